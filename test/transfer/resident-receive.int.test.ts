/**
 * The resident receiver (`drover-receive resident`, docs/DESIGN.md §37): one long-lived receive
 * session per peer connection takes every incremental stream, with the one-shot receive's
 * checks, over the local cluster's real OpenSSH servers and the agents' restricted key.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Replicator } from '../../convergence-agent/transfer/replicate.ts';
import { RESIDENT_HELLO } from '../../convergence-agent/transfer/resident-frames.ts';
import type { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { sshAsAgents, sshPeerFor, writeRandom } from './helpers.ts';

/** The pids of `drover-receive resident` processes serving `pool` (sshd's children, found by environment and argv). */
function residentPids(pool: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!argv.some((a) => a.endsWith('drover-receive.js')) || !argv.includes(pool)) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes('SSH_ORIGINAL_COMMAND=drover-receive resident')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describeWith(['root', 'zfs', 'sshd'], 'the resident receiver', () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: true });
  let source: ZfsStore;
  let target: ZfsStore;
  let stateDir: string;
  const peers: SshPeer[] = [];

  beforeAll(async () => {
    source = new ZfsStore({ pool: cluster().nodes[0]!.pool });
    target = new ZfsStore({ pool: cluster().nodes[1]!.pool });
    stateDir = await mkdtemp(join(tmpdir(), 'drover-resident-state-'));
  });

  afterAll(async () => {
    for (const p of peers) await p.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  /** `ssh -i <agents' key> root@n2 <command>` with `input` on stdin: exit status, stdout, stderr. */
  const ssh = (command: string[], input: Buffer | string = '') => sshAsAgents(cluster(), cluster().nodes[1]!, command, input);

  it('refuses every header the one-shot receive refuses — another pool, a path outside drover/, a diagnostic, a session request — and creates nothing', async () => {
    const n2 = cluster().nodes[1]!;
    const before = (await target.listDatasets()).map((d) => d.name);
    const headers = [
      { op: 'receive', pool: cluster().nodes[0]!.pool, datasetId: randomUUID(), resumable: false, full: false },
      { op: 'receive', pool: n2.pool, datasetId: '../../victim', resumable: false, full: false },
      { op: 'receive', pool: `${n2.pool}/elsewhere`, datasetId: randomUUID(), resumable: false, full: true },
      { op: 'pipe-size' },
      { op: 'getDataset', pool: n2.pool, datasetId: randomUUID() },
    ];
    const r = await ssh(['drover-receive', 'resident'], `${headers.map((h) => JSON.stringify(h)).join('\n')}\nnot json\n`);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0], r.stderr).toBe(RESIDENT_HELLO);
    expect(lines).not.toContain('DROVER-READY');
    const answers = lines.slice(1).map((l) => JSON.parse(l) as { ok: boolean; error: { code: string; message: string } });
    expect(answers).toHaveLength(headers.length + 1);
    for (const a of answers) expect(a).toMatchObject({ ok: false, error: { code: expect.stringMatching(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/) } });
    expect(answers[0]!.error.message).toContain(`pool ${n2.pool} only`);
    expect((await target.listDatasets()).map((d) => d.name)).toEqual(before);
  });

  it('takes each increment in one resident session, and a session killed mid-stream leaves the replica as it was; the next step opens another and succeeds', async () => {
    const n2 = cluster().nodes[1]!;
    const peer = await sshPeerFor(cluster(), n2);
    peers.push(peer);
    const replicator = new Replicator({ store: source, stateDir, retries: 0 });
    const id = randomUUID();
    const dir = (await source.createDataset(id, { maximumSize: null })).mountpoint!;
    await writeRandom(join(dir, 'a.bin'), 1);
    await replicator.replicate({ datasetId: id, peer });
    for (const name of ['b.bin', 'c.bin']) {
      await writeRandom(join(dir, name), 1);
      expect(await replicator.replicate({ datasetId: id, peer })).toMatchObject({ incremental: true });
    }
    // Both increments went through the one session (a one-shot would leave none).
    expect(peer.connection.residentSessions).toBe(1);
    const [first] = residentPids(n2.pool);
    expect(first).toBeDefined();

    await writeRandom(join(dir, 'big.bin'), 48);
    const before = (await target.listSnapshots(id)).map((s) => s.snapshot);
    let killed = false;
    const failed = await replicator
      .replicate({
        datasetId: id,
        peer,
        onProgress: (p) => {
          if (!killed && p.bytes > 4 << 20) {
            killed = true;
            for (const pid of residentPids(n2.pool)) process.kill(pid, 'SIGKILL');
          }
        },
      })
      .catch((err: unknown) => err);
    expect(killed).toBe(true);
    expect(failed).toMatchObject({ retryable: true });
    expect((await target.listSnapshots(id)).map((s) => s.snapshot)).toEqual(before);

    const next = await replicator.replicate({ datasetId: id, peer });
    expect(next).toMatchObject({ incremental: true });
    expect((await target.listSnapshots(id)).at(-1)!.guid).toBe((await source.listSnapshots(id)).at(-1)!.guid);
    const now = residentPids(n2.pool);
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(first);
  });
});
