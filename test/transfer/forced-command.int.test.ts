/**
 * drover's ssh key on a node can run drover-receive and nothing else (docs/DESIGN.md §24):
 * the local cluster's real OpenSSH servers, the agents' key, the restricted authorized_keys
 * line the harness writes. Asked with OpenSSH's own client (as an attacker holding the key
 * would) and with drover's SshPeer.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { SshPeer } from '../../convergence-agent/transfer/ssh-peer.ts';
import { ZfsStore } from '../../convergence-agent/zfs/zfs.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';
import { sshAsAgents } from './helpers.ts';

describeWith(['root', 'zfs', 'sshd'], "the transfer key's forced command", () => {
  const cluster = useTestCluster({ nodes: 2, docker: false, ssh: true });

  /** `ssh -i <agents' key> root@n2 <command>` with `input` on stdin: exit status, stdout, stderr. */
  const ssh = (command: string[], input: Buffer | string = '') => sshAsAgents(cluster(), cluster().nodes[1]!, command, input);

  it('writes a restricted authorized_keys line: drover-receive for the node\'s own pool, restrict', async () => {
    const n2 = cluster().nodes[1]!;
    const text = await readFile(join(n2.stateDir, 'sshd', 'authorized_keys'), 'utf8');
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).toMatch(new RegExp(`^command="\\S+ \\S+/bin/drover-receive\\.js --pool ${n2.pool}",restrict ssh-ed25519 `));
  });

  it('runs no shell and no other command with the transfer key: id, sh -s, zfs, an interactive login all fail', async () => {
    for (const [command, input] of [[['id'], ''], [['sh', '-s'], 'id\n'], [['zfs', 'list'], ''], [['drover-receive', 'session;', 'id'], ''], [[], 'id\n']] as const) {
      const r = await ssh([...command], input);
      expect(r.status, `ssh … ${command.join(' ')}`).not.toBe(0);
      expect(r.stdout).not.toMatch(/uid=/);
      expect(r.stderr).toContain('DROVER_SSH_RECEIVE_REFUSED');
    }
  });

  it('receives only into drover/ of the node\'s own pool: another pool, a path outside drover/ and a raw zfs receive are refused and create nothing', async () => {
    const n2 = cluster().nodes[1]!;
    const target = new ZfsStore({ pool: n2.pool });
    const before = (await target.listDatasets()).map((d) => d.name);
    const headers = [
      { op: 'receive', pool: cluster().nodes[0]!.pool, datasetId: randomUUID(), resumable: false, full: true },
      { op: 'receive', pool: n2.pool, datasetId: '../../victim', resumable: false, full: true },
      { op: 'receive', pool: `${n2.pool}/elsewhere`, datasetId: randomUUID(), resumable: false, full: true },
    ];
    for (const header of headers) {
      const r = await ssh(['drover-receive', 'receive'], `${JSON.stringify(header)}\nnot a zfs stream`);
      expect(r.status, JSON.stringify(header)).not.toBe(0);
      expect(r.stdout).not.toContain('DROVER-READY');
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ ok: false, error: { code: expect.stringMatching(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/) } });
    }
    const raw = await ssh(['zfs', 'receive', '-u', `${n2.pool}/stolen`], 'x');
    expect(raw.stderr).toContain('DROVER_SSH_RECEIVE_REFUSED');
    expect((await target.listDatasets()).map((d) => d.name)).toEqual(before);
    const list = await new Promise<string>((resolve) => {
      const z = spawn('zfs', ['list', '-H', '-o', 'name', '-r', n2.pool]);
      let out = '';
      z.stdout.on('data', (d: Buffer) => (out += d.toString()));
      z.on('close', () => resolve(out));
    });
    expect(list).not.toMatch(/stolen|victim|elsewhere/);
  });

  it("refuses a session request for another pool, naming the node's own", async () => {
    const n2 = cluster().nodes[1]!;
    const ssh = n2.ssh!;
    const wrong = new SshPeer({
      id: n2.uuid,
      host: ssh.host,
      port: ssh.port,
      user: ssh.user,
      hostKeyFingerprint: ssh.hostKeyFingerprint,
      privateKey: await readFile(cluster().sshClientKey.privateKeyPath),
      pool: cluster().nodes[0]!.pool,
    });
    try {
      await expect(wrong.features()).rejects.toMatchObject({ code: 'DROVER_SSH_RECEIVE_REFUSED', message: expect.stringContaining(`pool ${n2.pool} only`) });
    } finally {
      await wrong.close();
    }
  });
});
