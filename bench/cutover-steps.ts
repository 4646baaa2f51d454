/**
 * `npx tsx bench/cutover-steps.ts [-- --rounds 10] [--json]`
 *
 * drover's own zfs steps inside a migration's stopped interval, each the way it was and the
 * way it is now, interleaved round by round on one throw-away zfs-fuse pool (the machine's
 * load swings too much to compare runs; `bench:migrate` shows them inside whole moves):
 *   target   replica made writable and mounted: `set readonly=off`, `set drover:readonly=off`,
 *            `mount` in a row  vs  the three side by side (ZfsStore.makeWritableMounted)
 *   snapshot final snapshot and the listing the step plans with: `snapshot`, `get` (its guid),
 *            `get` again  vs  the first listing kept (ZfsStore.createSnapshotListed)
 *   holds    the step's holds on the base, then the incremental `send | receive -u`  vs  the
 *            holds beside the stream (a local pipe stands in for the peer)
 * Prints each pair's median and p90 (ms) and the ratio new ÷ old.
 */
import { execa } from 'execa';
import { parseArgs } from 'node:util';
import { createTempPool } from '../convergence-agent/testing/temp-pool.ts';
import { ZfsStore } from '../convergence-agent/zfs/zfs.ts';

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } } });
const rounds = Number(flags.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error('--rounds: 1..100');

const pool = await createTempPool({ sizeMiB: 256, prefix: 'drover-bench' });
const store = new ZfsStore({ pool: pool.name, mountRoot: pool.mountRoot });
const SOURCE = '2b1e7a1c-0000-4000-8000-00000000be01';
const REPLICA = '2b1e7a1c-0000-4000-8000-00000000be02';
const TARGET = '2b1e7a1c-0000-4000-8000-00000000be03';
const times: Record<string, number[]> = {};
const timed = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
  const began = performance.now();
  await fn();
  (times[name] ??= []).push(performance.now() - began);
};
const path = (id: string) => `${pool.name}/drover/${id}`;
let seq = 0;
const snapName = () => `drover-20261206T200000000Z-${String(++seq).padStart(4, '0')}`;

try {
  await store.ensureRoot();
  await store.createDataset(SOURCE, { maximumSize: null });
  await store.createDataset(TARGET, { maximumSize: null });
  let base = snapName();
  await store.createSnapshot(SOURCE, base);
  await execa('bash', ['-c', `zfs send ${path(SOURCE)}@${base} | zfs receive -u ${path(REPLICA)}`]);
  for (let i = 0; i < rounds; i++) {
    // target: the replica at handoff (read-only, unmounted before each try)
    for (const variant of i % 2 === 0 ? ['old', 'new'] : ['new', 'old']) {
      await store.setReadonly(TARGET, true);
      await store.unmount(TARGET);
      await timed(`target ${variant}`, async () => {
        if (variant === 'new') return store.makeWritableMounted(TARGET);
        await store.setReadonly(TARGET, false);
        await store.mount(TARGET);
      });
    }
    // snapshot: the final snapshot and the step's listing
    for (const variant of i % 2 === 0 ? ['old', 'new'] : ['new', 'old']) {
      await execa('dd', ['if=/dev/urandom', `of=${pool.mountRoot}/${SOURCE}/f${i}${variant}`, 'bs=64k', 'count=16', 'status=none']);
      const name = snapName();
      await timed(`snapshot ${variant}`, async () => {
        if (variant === 'new') return store.createSnapshotListed(SOURCE, name);
        await store.createSnapshot(SOURCE, name);
        await store.listSnapshots(SOURCE);
      });
      // holds: base held for the step, then the incremental into the replica
      await timed(`holds ${variant}`, async () => {
        const holds = () => Promise.all([store.hold(SOURCE, base, 'drover-step'), store.hold(REPLICA, base, 'drover-step')]);
        const pipe = () => execa('bash', ['-o', 'pipefail', '-c', `zfs send -i ${path(SOURCE)}@${base} ${path(SOURCE)}@${name} | zfs receive -u ${path(REPLICA)}`]);
        if (variant === 'new') await Promise.all([holds(), pipe()]);
        else {
          await holds();
          await pipe();
        }
      });
      await Promise.all([store.release(SOURCE, base, 'drover-step'), store.release(REPLICA, base, 'drover-step')]);
      base = name;
    }
  }
} finally {
  await pool.destroy();
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const rows = ['target', 'snapshot', 'holds'].map((step) => {
  const old = times[`${step} old`]!;
  const now = times[`${step} new`]!;
  return { step, oldP50Ms: Math.round(quantile(old, 0.5)), newP50Ms: Math.round(quantile(now, 0.5)), oldP90Ms: Math.round(quantile(old, 0.9)), newP90Ms: Math.round(quantile(now, 0.9)) };
});
if (flags.json) console.log(JSON.stringify({ rounds, steps: rows }));
else {
  console.log(`rounds ${rounds}, interleaved (ms)`);
  for (const r of rows) console.log(`${r.step.padEnd(9)} old p50 ${r.oldP50Ms} p90 ${r.oldP90Ms} · new p50 ${r.newP50Ms} p90 ${r.newP90Ms} · new ÷ old (p50) ${(r.newP50Ms / r.oldP50Ms).toFixed(2)}`);
}
