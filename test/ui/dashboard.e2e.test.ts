import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { controlUrl, operatorTls } from '../../local-cluster/index.ts';
import { until } from '../migration/stack.ts';
import { ReplicationWorld, type RedisApp } from '../replication/world.ts';
import { useTestCluster } from '../support/cluster.ts';
import { CHROMIUM, LOCAL_CLUSTER, describeWith } from '../support/require.ts';

// docs/DESIGN.md §26 end to end: Debian's Chromium, headless, driven by playwright-core,
// opens the dashboard of a 2-node local cluster over the control service's mutual TLS with
// the operator's certificate; sees both nodes and the Redis application (with its replica
// on n2), moves it to n2 from the page (asked to confirm), and watches the move reach `done`
// there. Screenshots — during the move and after — go to the artifacts directory
// (DROVER_TEST_ARTIFACTS, else a new directory under the system's temp dir), printed.
const LONG = 300_000;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/**
 * Opens the dashboard as an operator would: loaded, and reloaded when the load itself failed.
 * Chromium aborts every request in flight when an address of the host changes
 * (`net::ERR_NETWORK_CHANGED`), and every container start here brings up a veth and, a second or
 * two later, IPv6 link-local addresses on it and on its bridge (seen with `ip monitor address`).
 * An operator's browser on a node would see the same, and its user would reload. The
 * page's own reads already retry (control-service/ui/browser/api.js). At most 4 loads.
 */
async function open(page: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    // A load that failed may be followed by Chromium's own reload of its error page, which
    // interrupts the next goto: so look for the page first, and load again only without it.
    await page.goto(url).catch((err: Error) => console.log(`dashboard load ${attempt}: ${err.message.split('\n')[0]}`));
    try {
      await page.locator('#nodes').waitFor({ timeout: 10_000 });
      return;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
}

describeWith([...LOCAL_CLUSTER, 'chromium'], 'the web dashboard in a real browser', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['busybox', 'redis'], poolSizeMiB: 1024 });
  let world: ReplicationWorld;
  let app: RedisApp;
  let browser: Browser | undefined;
  let page: Page;
  let artifacts: string;

  beforeAll(async () => {
    artifacts = process.env.DROVER_TEST_ARTIFACTS ?? join(tmpdir(), `drover-ui-artifacts-${Date.now()}`);
    await mkdir(artifacts, { recursive: true });
    console.log(`dashboard screenshots: ${artifacts}`);
    world = await ReplicationWorld.start(cluster());
    app = await world.deployRedis('kv', 16620, 1, { replicas: 1, intervalS: 2 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const url = controlUrl(cluster());
    const operator = operatorTls(cluster());
    // Playwright presents the operator's certificate to the control service for the page
    // (its `clientCertificates`: a TLS hop of its own between Chromium and the server). That
    // hop does not know the cluster's CA, so the server's certificate is not checked here;
    // the API clients of the other tests check it.
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1400, height: 1000 },
      clientCertificates: [{ origin: url, cert: Buffer.from(operator.cert), key: Buffer.from(operator.key) }],
    });
    page = await context.newPage();
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') console.log(`page console: ${message.text()}`);
    });
    await open(page, `${url}/ui`);
  }, LONG);

  afterAll(async () => {
    // What the page showed last, for a reader of a failure.
    if (page) {
      await page.screenshot({ path: join(artifacts, 'dashboard-last.png'), fullPage: true }).catch(() => undefined);
      console.log(`the page at the end:\n${(await page.locator('body').innerText().catch((err: Error) => err.message)).slice(0, 3000)}`);
    }
    await browser?.close();
  });

  it('shows both nodes as known and the Redis application healthy on n1, with its replica on n2', async () => {
    for (const name of ['n1', 'n2']) await expect.poll(() => page.locator(`#nodes tr[data-node="${name}"] td.state`).textContent(), { timeout: 30_000 }).toBe('known');
    await expect.poll(() => page.locator('#nodes tr[data-node="n1"]').innerText(), { timeout: 30_000 }).toContain('kv');
    const row = page.locator('#applications tr[data-app="kv"]');
    await expect.poll(() => row.locator('td.node').textContent(), { timeout: 30_000 }).toBe('n1');
    await expect.poll(() => row.locator('td.health').textContent(), { timeout: 30_000 }).toBe('healthy');
    expect(await row.innerText()).toContain(`${app.port}→6379`);
    await until('the replica on n2 ok', async () => (await world.replica(app, 2))?.state === 'ok', 180_000);
    await expect.poll(() => row.innerText(), { timeout: 30_000 }).toMatch(/n2 ok, lag [\d.]+ s/);
    await expect.poll(() => page.locator('#datasets').innerText(), { timeout: 30_000 }).toMatch(/kv_data\s+kv\s+n1\s+n2/);
  }, LONG);

  it('moves the application to n2 from the page after a confirmation, and shows the move reach done', async () => {
    const row = page.locator('#applications tr[data-app="kv"]');
    await row.locator('select').selectOption({ label: 'n2' });
    await row.getByRole('button', { name: 'Move' }).click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.innerText()).toContain('Move kv from n1 to n2?');
    // Nothing is sent before the operator confirms.
    expect((await world.api.migrations()).filter((m) => m.application === 'kv')).toEqual([]);
    const asked = Date.now();
    await dialog.getByRole('button', { name: 'Confirm' }).click();

    const move = page.locator('li.migration').first();
    let during = false;
    try {
      // A phase after pending, so the picture has data on the move and a timeline under way.
      await page.waitForSelector(['pre-copy', 'cutover', 'handoff', 'release'].map((p) => `li.migration[data-phase="${p}"]`).join(', '), { timeout: 120_000 });
      during = true;
      await page.screenshot({ path: join(artifacts, 'dashboard-during-move.png'), fullPage: true });
    } catch {
      // The move may end between two renders on a fast machine: the page is checked at done below.
    }
    await page.waitForSelector('li.migration[data-phase="done"]', { timeout: 240_000 });
    const seenDone = Date.now() - asked;
    expect(await move.getAttribute('data-phase')).toBe('done');
    expect(await move.locator('.title').innerText()).toMatch(/move kv\s+n1 → n2/);
    expect(await move.locator('.progress').innerText()).toMatch(/cutover pause [\d.]+ (ms|s)/);
    expect(await move.locator('ol.timeline li').allInnerTexts()).toEqual(expect.arrayContaining([expect.stringMatching(/^pending/), expect.stringMatching(/^pre-copy/), expect.stringMatching(/^cutover/), expect.stringMatching(/^done/)]));
    expect(await move.locator('ol.timeline li.todo').count()).toBe(0);
    await expect.poll(() => row.locator('td.node').textContent(), { timeout: 30_000 }).toBe('n2');
    await expect.poll(() => page.locator('#events').innerText(), { timeout: 30_000 }).toContain('move kv n1 → n2: done');
    await page.screenshot({ path: join(artifacts, 'dashboard-after-move.png'), fullPage: true });

    const record = (await world.api.migrations()).find((m) => m.application === 'kv');
    expect(record).toMatchObject({ phase: 'done', error: null, to: world.node(2).uuid });
    console.log(`dashboard: move seen in the page ${during ? 'while running and ' : ''}at done ${(seenDone / 1000).toFixed(1)} s after confirm; cutover pause ${record?.cutover_ms} ms; screenshots in ${artifacts}`);
  }, LONG);

  it('drains nothing when the operator goes back from the question, and cordons and uncordons a node after confirming', async () => {
    const n1 = page.locator('#nodes tr[data-node="n1"]');
    await n1.getByRole('button', { name: 'Drain' }).click();
    expect(await page.getByRole('dialog').innerText()).toContain('Drain n1?');
    await page.keyboard.press('Escape');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await page.waitForTimeout(1000);
    expect((await world.api.nodes()).find((n) => n.uuid === world.node(1).uuid)?.draining ?? false).toBe(false);
    for (const [button, after, cordoned] of [['Cordon', 'cordoned', true], ['Uncordon', 'schedulable', false]] as const) {
      await n1.getByRole('button', { name: button, exact: true }).click();
      const dialog = page.getByRole('dialog');
      expect(await dialog.innerText()).toContain(`${button} n1?`);
      await dialog.getByRole('button', { name: 'Confirm' }).click();
      await expect.poll(() => n1.innerText(), { timeout: 30_000 }).toContain(after);
      const state = (await world.api.nodes()).find((n) => n.uuid === world.node(1).uuid);
      expect(state?.cordoned ?? false).toBe(cordoned);
    }
  }, LONG);
});
