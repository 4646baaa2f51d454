/**
 * The replication report (docs/DESIGN.md §38) on real components: zfs-fuse pools and OpenSSH
 * of a 2-node local cluster, the agent's ReplicationScheduler and ReplicationReporter on the
 * system clock, and the control service over HTTP (in this process, on 127.0.0.1). The node's
 * full reports in this test are all stale — built once, before any step, as a pass's report is
 * built before the steps that end during it — and sent every second to keep the node's lease:
 * what `GET /v1/drover/replication` shows of the replica can only come from the replication
 * reports, and must not be rolled back by those full reports.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import type { ReplicaAnswer } from '#common/api.ts';
import { systemClock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import type { NodeReport } from '#common/model.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { HttpControlChannel } from '../../convergence-agent/control-channel.ts';
import { ReplicationReporter } from '../../convergence-agent/replication-reporter.ts';
import { ReplicationScheduler } from '../../convergence-agent/replication/scheduler.ts';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { sshPeerFor } from '../transfer/helpers.ts';

const INTERVAL_S = 2;
const RETENTION = { primary: '1x5m(keep=all)', replicas: '1x5m(keep=all)' };

describeWith(['root', 'zfs', 'sshd'], 'the replication report: the control service learns of each step when it ends', () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: true });
  let control: Control;
  let app: FastifyInstance;
  let api: ApiClient;
  let channel: HttpControlChannel;
  let stateDir: string;
  let peer: SshPeer | null = null;
  let scheduler: ReplicationScheduler | null = null;
  let reporter: ReplicationReporter | null = null;
  let heartbeat: NodeJS.Timeout | null = null;

  beforeAll(async () => {
    control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
    await control.start();
    app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    api = new ApiClient({ baseUrl: url });
    channel = new HttpControlChannel(url);
    stateDir = await mkdtemp(join(tmpdir(), 'drover-replication-report-'));
  });

  afterAll(async () => {
    if (heartbeat) clearInterval(heartbeat);
    await scheduler?.stop();
    await reporter?.stop();
    await peer?.close();
    await app?.close();
    await control?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("shows the replica's lag dropping right after each step, from the replication report alone, and a stale full report never rolls it back", async () => {
    const [n1, n2] = cluster().nodes;
    const primary = new ZfsStore({ pool: n1!.pool });
    const replica = new ZfsStore({ pool: n2!.pool });
    const reportOf = (uuid: string, host: string): NodeReport => ({ uuid, host, era: `era-${uuid.slice(0, 8)}`, labels: {}, transfer: {}, datasets: [], containers: [], problems: [], replication: [] });
    await channel.report(reportOf(n2!.uuid, '127.0.0.12'));
    await channel.report(reportOf(n1!.uuid, '127.0.0.11'));
    const id = randomUUID();
    const info = await primary.createDataset(id, { maximumSize: null });
    await api.createDataset({ dataset_id: id, primary: n1!.uuid });
    await api.setDatasetReplication(id, { replicas: 1, interval_seconds: INTERVAL_S, retention: RETENTION });
    const view = await channel.waitForDesired(n1!.uuid, null, 1_000);
    expect(view.datasets.find((d) => d.dataset_id === id)?.replicas).toEqual([n2!.uuid]);

    peer = await sshPeerFor(cluster(), n2!);
    const replicator = new Replicator({ store: primary, stateDir, retries: 0, stallMs: 20_000 });
    const s = new ReplicationScheduler({
      nodeUuid: n1!.uuid,
      clock: systemClock,
      log: silentLogger(),
      store: primary,
      replicate: (o) => replicator.replicate(o),
      settle: (p, d) => replicator.settle(p, d),
      peers: { peerFor: async () => peer!, close: async () => {} },
      onChange: () => reporter?.changed(),
    });
    scheduler = s;
    // The full report every second: built now, before any step, and never again.
    const stale = { ...reportOf(n1!.uuid, '127.0.0.11'), ...((r) => ({ replication: r.statuses, replication_seq: r.seq }))(s.statusReport()) };
    heartbeat = setInterval(() => void channel.report(stale).catch(() => undefined), 1_000);
    reporter = new ReplicationReporter({ identity: { uuid: n1!.uuid, era: stale.era }, status: () => s.statusReport(), send: (r, signal) => channel.replicationReport(r, signal), clock: systemClock, log: silentLogger() });
    s.sync(view);

    const replicaLine = async (): Promise<ReplicaAnswer | undefined> => (await api.replication()).find((d) => d.dataset_id === id)?.replicas[0];
    const deadline = Date.now() + 90_000;
    while ((await replicaLine())?.state !== 'ok') {
      if (Date.now() > deadline) throw new Error(`the replica never showed ok: ${JSON.stringify(await replicaLine())}`);
      await systemClock.sleep(100);
    }

    // 12 s of a user's view, every 100 ms, while the application writes.
    const samples: ReplicaAnswer[] = [];
    const end = Date.now() + 12_000;
    let i = 0;
    while (Date.now() < end) {
      if (i % 5 === 0) await writeFile(join(info.mountpoint!, `w${i}.txt`), `write ${i}\n`.repeat(100));
      i += 1;
      samples.push((await replicaLine())!);
      await systemClock.sleep(100);
    }
    expect(samples.every((r) => r.state === 'ok')).toBe(true);
    const shown = [...new Set(samples.map((r) => r.newest_snapshot))];
    // One step per interval, each shown as it ended: several in 12 s, each one the replica really holds.
    expect(shown.length).toBeGreaterThanOrEqual(3);
    const held = new Set((await replica.listSnapshots(id)).map((x) => x.snapshot));
    for (const name of shown) expect(held.has(name!)).toBe(true);
    // The lag drops when a step ends (not only when a full report comes: none carries a step here).
    const drops = samples.filter((r, k) => k > 0 && r.lag_seconds! < samples[k - 1]!.lag_seconds!).length;
    expect(drops).toBeGreaterThanOrEqual(3);
    // A problem is shown exactly while the lag shown is over 3 × the interval (a step slowed by
    // the machine's load may take it there for a moment: that is the problem report working,
    // not the replica falling behind), and the replica is fine most of the time.
    for (const r of samples) expect(r.problem !== null, `${r.lag_seconds}s: ${r.problem}`).toBe(r.lag_seconds! > 3 * INTERVAL_S);
    expect(samples.filter((r) => r.problem === null).length).toBeGreaterThan(samples.length / 2);
    // The snapshots shown only move forward: no stale full report rolled one back.
    for (let k = 1; k < samples.length; k++) expect(shown.indexOf(samples[k]!.newest_snapshot)).toBeGreaterThanOrEqual(shown.indexOf(samples[k - 1]!.newest_snapshot));
  });
});
