import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Migration } from '#common/model.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';
import { MiB, deployRedis, missingKeys, onePrimary, writeKeys } from './redis-world.ts';
import { MigrationStack } from './stack.ts';

// The phase timings of a 256 MiB move (issue 5): Redis with 256 MiB of incompressible data
// moved from node 1 to node 2 over ssh, every phase change timed as the control service's
// event stream delivers it. Not a timed test: it asserts the move and logs the figures.
describeWith(LOCAL_CLUSTER, 'a 256 MiB move (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['redis'], poolSizeMiB: 1024 });
  let dir: string;
  let stack: MigrationStack;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-move-256-'));
    stack = await MigrationStack.start(cluster(), dir);
  });

  afterAll(async () => {
    await stack?.stop();
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('moves 256 MiB with a cutover that does not grow with the size, and logs the phase timings', async () => {
    const app = await deployRedis(stack, 'big', 1, 256);
    const keys = await writeKeys(stack, app, 'k', 1_000);

    const seen = new Map<string, number>();
    const events = new AbortController();
    let last: Migration | null = null;
    const watching = (async () => {
      for await (const e of stack.api.events({ signal: events.signal, types: ['migration'] })) {
        const m = e.data as Migration;
        if (!seen.has(m.phase)) seen.set(m.phase, Date.now());
        last = m;
        if (isTerminal(m.phase)) return;
      }
    })().catch(() => {});

    const started = Date.now();
    const answer = await stack.api.moveContainer(app.name, stack.node(2).uuid);
    const id = answer.migration!.id;
    const deadline = Date.now() + 300_000;
    let m = await stack.api.migration(id);
    while (m.phase !== 'done' && m.phase !== 'failed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      m = await stack.api.migration(id);
    }
    events.abort();
    await watching;
    expect(m.phase).toBe('done');
    expect(await onePrimary(stack, app)).toBe(2);
    expect(await missingKeys(stack, app, keys)).toEqual([]);

    const at = (p: string) => seen.get(p) ?? null;
    const span = (a: string, b: string) => (at(a) !== null && at(b) !== null ? at(b)! - at(a)! : null);
    const figures = {
      bytes_sent_mib: +(m.bytes_sent / MiB).toFixed(1),
      rounds: m.round,
      pre_copy_ms: span('pre-copy', 'cutover'),
      cutover_ms: span('cutover', 'handoff'),
      handoff_to_release_ms: span('handoff', 'release'),
      release_to_done_ms: span('release', 'done'),
      control_cutover_ms: m.cutover_ms,
      total_ms: Date.now() - started,
      pre_copy_mib_per_s: span('pre-copy', 'cutover') ? +((m.bytes_sent / MiB) / (span('pre-copy', 'cutover')! / 1000)).toFixed(1) : null,
    };
    console.log(`256 MiB move: ${JSON.stringify(figures)} (last event ${JSON.stringify((last as Migration | null)?.phase ?? null)})`);
    expect(m.bytes_sent).toBeGreaterThan(256 * MiB);
    // Downtime is the cutover only, and it must not scale with the dataset: far below the
    // time the whole dataset took to send.
    expect(figures.cutover_ms).not.toBeNull();
    expect(figures.cutover_ms!).toBeLessThan(figures.pre_copy_ms!);
  });
});
