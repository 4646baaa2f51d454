import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { runCli } from '../../cli/dispatch.ts';
import { observedDataset, report } from '../../control-service/testing/harness.ts';
import { NODES, startControl, type InProcessControl } from './control-in-process.ts';

// `drover node cordon|uncordon|drain` and `drover move --force`, in-process against the real
// control service over real HTTP; the test plays the agents (control-in-process.ts).
const [N1, N2] = NODES.map((n) => n.uuid) as [string, string];
const D = '0000000d-0000-4000-8000-000000000001';

let control: InProcessControl;
let api: ApiClient;
beforeEach(async () => {
  control = await startControl();
  api = new ApiClient({ baseUrl: control.url });
});
afterEach(async () => control.close());

function buffer() {
  let text = '';
  return { isTTY: false, write: (s: string) => (text += s), get text() { return text; } };
}

async function drover(argv: string[]) {
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(argv, { stdout, stderr, env: { DROVER_CONTROL: control.url }, cwd: '/', sleep: () => control.agentStep() });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('drover node trust-host-key', () => {
  const KEY_A = `SHA256:${'A'.repeat(43)}`;
  const KEY_B = `SHA256:${'B'.repeat(43)}`;
  const withKey = (key: string) => report(1, { labels: { name: 'n1' }, transfer: { ssh: { host: '127.0.0.11', port: 22, user: 'root', host_key_fingerprint: key } } });

  it("accepts a reinstalled node's new host key by the node's name, and drover status shows who accepted it instead of the refusal", async () => {
    await control.control.report(withKey(KEY_A));
    await control.control.report(withKey(KEY_B));
    expect((await drover(['status'])).stdout).toContain(`127.0.0.11: ssh host key change refused: the node reports ${KEY_B}`);
    const wrong = await drover(['node', 'trust-host-key', 'n1', '--fingerprint', 'SHA256:short']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--fingerprint "SHA256:short" is not an OpenSSH SHA256 fingerprint');
    expect(await drover(['node', 'trust-host-key', 'n1'])).toMatchObject({ code: 0, stdout: `n1: ssh host key ${KEY_B} accepted (was ${KEY_A}); senders pin it from now on\n` });
    const status = (await drover(['status'])).stdout;
    expect(status).not.toContain('refused');
    expect(status).toMatch(new RegExp(`127\\.0\\.0\\.11: ssh host key ${KEY_B.replaceAll('+', '\\+')} accepted by plain-loopback \\S+ \\(was ${KEY_A}\\)`));
    const json = JSON.parse((await drover(['status', '--json'])).stdout) as { nodes: Array<{ uuid: string; host_key_accepted: unknown }> };
    expect(json.nodes.find((n) => n.uuid === N1)?.host_key_accepted).toMatchObject({ fingerprint: KEY_B, previous: KEY_A });
  });

  it('says there is nothing to accept when the node reports the key it is pinned to, and changes nothing', async () => {
    await control.control.report(withKey(KEY_A));
    const version = control.control.snapshot.version;
    const out = await drover(['node', 'trust-host-key', 'n1']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`it reports the key it is pinned to (${KEY_A})`);
    expect(control.control.snapshot.version).toBe(version);
  });
});

describe('drover node', () => {
  it('cordons a node by its name label, shows it in drover status, and uncordons it by its uuid', async () => {
    await api.createContainer({ name: 'web', image: 'nginx', node_uuid: N1 });
    await control.reportAll();
    expect(await drover(['node', 'cordon', 'n1'])).toMatchObject({ code: 0, stdout: 'n1 cordoned: nothing new is placed there; 1 application stays (drover node drain n1 moves them off)\n' });
    expect((await drover(['status'])).stdout).toMatch(/127\.0\.0\.11 .* known, cordoned /);
    await api.createContainer({ name: 'new', image: 'nginx' });
    expect((await api.containers()).containers.find((a) => a.name === 'new')?.node_uuid).toBe(N2);
    expect(await drover(['node', 'uncordon', N1])).toMatchObject({ code: 0, stdout: 'n1 is schedulable again\n' });
    expect((await drover(['status'])).stdout).not.toContain('cordoned');
  });

  it('drains a node with two applications, waiting with progress until it is empty', async () => {
    await api.createDataset({ primary: N1, dataset_id: D });
    await api.createContainer({ name: 'db', image: 'redis', node_uuid: N1, volumes: [{ dataset_id: D, mountpoint: '/data' }] });
    await api.createContainer({ name: 'web', image: 'nginx', node_uuid: N1 });
    await control.reportAll();
    const out = await drover(['node', 'drain', 'n1']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const lines = out.stdout.split('\n');
    expect(lines[0]).toBe('draining n1: 2 applications to move');
    expect(lines.slice(1, 3).join('\n')).toMatch(/moving "db" to n2 \(migration [0-9a-f]{8}\)\n {2}moving "web" to n2/);
    expect(out.stdout).toContain('draining (2 left): "db" → n2 pending, "web" → n2 pending');
    expect(out.stdout).toContain('draining (1 left)');
    expect(lines.at(-2)).toBe('n1 drained: no application left (cordoned; drover node uncordon n1 makes it schedulable again)');
    expect((await api.containers()).containers.map((a) => [a.name, a.node_uuid])).toEqual([['db', N2], ['web', N2]]);
    await control.reportAll();
    expect((await drover(['status'])).stdout).toMatch(/127\.0\.0\.11 .* known, drained /);
  });

  it('shows a drain in progress in drover status, and --no-wait returns at once', async () => {
    await api.createContainer({ name: 'web', image: 'nginx', node_uuid: N1 });
    await control.reportAll();
    expect((await drover(['node', 'drain', 'n1', '--no-wait'])).code).toBe(0);
    expect((await drover(['status'])).stdout).toMatch(/127\.0\.0\.11 .* known, draining \(1 left\) /);
  });

  it('ends with exit 1 naming what cannot move and why', async () => {
    await api.createContainer({ name: 'pinned', image: 'nginx', node_uuid: N1, placement: { constraints: ['node.labels.name == n1'] } });
    await control.reportAll();
    const out = await drover(['node', 'drain', 'n1']);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('"pinned" cannot move: its node');
    expect(out.stderr).toMatch(/^drover: n1 is not drained: "pinned": its node .* is being drained, and no other node fits: fails "node.labels.name == n1" \(1 node\)/);
  });
});

describe('drover move --force', () => {
  /** db on n1 with D replicated to n2 (n2 reports a copy taken just now); then n1 falls silent for `silentS`. */
  async function silentN1(silentS: number, replicated = true) {
    await api.createDataset({ primary: N1, dataset_id: D, ...(replicated ? { replication: { replicas: 1, interval_seconds: 10, retention: { primary: '1x1m', replicas: '1x1m' } } } : {}) });
    await api.createContainer({ name: 'db', image: 'redis', node_uuid: N1, volumes: [{ dataset_id: D, mountpoint: '/data' }] });
    await control.reportAll();
    control.clock.advance(silentS * 1000);
    const copy = observedDataset(D, { writable: false, snapshots: [{ name: 'drover-20270115T080000000Z-1', guid: '1', createtxg: 1 }] });
    await control.control.report(report(2, { labels: { name: 'n2' }, datasets: replicated ? [copy] : [] }));
  }

  it('says at once that the source is silent without --force', async () => {
    await silentN1(20);
    const out = await drover(['move', 'db', 'n2']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('the source node 127.0.0.11 has been silent for 20 s (unknown)');
  });

  it('promotes the replica on the target and says what is lost', async () => {
    await silentN1(20);
    const out = await drover(['move', 'db', 'n2', '--force']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/^forced: "db" now runs on 127\.0\.0\.12 from its replica \(drover-20270115T080000000Z-1\); writes of the last 20\.0 s on the silent node are not in it/);
    expect((await api.containers()).containers[0]?.node_uuid).toBe(N2);
  });

  it('is refused with the reason when no replica exists', async () => {
    await silentN1(20, false);
    const out = await drover(['move', 'db', 'n2', '--force']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`Cannot force "db" onto 127.0.0.12: dataset ${D} has no replica`);
  });

  it('needs the data window repeated past the threshold', async () => {
    await silentN1(312);
    const refused = await drover(['move', 'db', 'n2', '--force']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is 5m12s old, more than the threshold of 1m0s');
    expect(refused.stderr).toContain('--accept-data-loss 5m12s');
    expect((await drover(['move', 'db', 'n2', '--accept-data-loss', '5m12s'])).code).toBe(2);
    expect((await drover(['move', 'db', 'n2', '--force', '--accept-data-loss', '5m12s'])).code).toBe(0);
  });
});
