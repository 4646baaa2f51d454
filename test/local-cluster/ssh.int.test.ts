import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Client } from 'ssh2';
import { expect, it } from 'vitest';
import type { LocalNodeSsh } from '../../local-cluster/index.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';

/** Runs `command` over ssh, accepting only a host key whose fingerprint is `pinned`. */
function sshRun(ssh: LocalNodeSsh, privateKey: Buffer, pinned: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error('ssh timed out'));
    }, 15_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      client.end();
      reject(err);
    };
    client.on('error', fail);
    client.on('ready', () => {
      client.exec(command, (err, stream) => {
        if (err) return fail(err);
        let out = '';
        stream.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
        stream.stderr.on('data', () => undefined);
        stream.on('close', (code: number) => {
          clearTimeout(timer);
          client.end();
          if (code === 0) resolve(out);
          else reject(new Error(`'${command}' exited ${code}`));
        });
      });
    });
    client.connect({
      host: ssh.host,
      port: ssh.port,
      username: ssh.user,
      privateKey,
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === pinned,
    });
  });
}

describeWith(LOCAL_CLUSTER, "a local cluster node's sshd", () => {
  const cluster = useTestCluster({ nodes: 3, docker: false });

  it("lets the agents' key in when the host key matches the pinned fingerprint, to run drover's receive only", async () => {
    const { nodes, sshClientKey } = cluster();
    const n3 = nodes[2]!.ssh!;
    const key = await readFile(sshClientKey.privateKeyPath);
    // Authenticated (a refused key fails with "authentication"), then the forced command
    // (docs/DESIGN.md §24) refuses a shell command: it exits non-zero, and nothing ran.
    await expect(sshRun(n3, key, n3.hostKeyFingerprint, 'echo ok; zpool list -H -o name')).rejects.toThrow(/exited [1-9]/);
  });

  it('refuses to talk to a node whose host key is not the pinned one', async () => {
    const { nodes, sshClientKey } = cluster();
    const key = await readFile(sshClientKey.privateKeyPath);
    const wrong = nodes[0]!.ssh!.hostKeyFingerprint;
    await expect(sshRun(nodes[2]!.ssh!, key, wrong, 'echo ok')).rejects.toThrow(/verification failed/i);
  });

  it('refuses a key that is not the agents', async () => {
    const { nodes } = cluster();
    const n3 = nodes[2]!.ssh!;
    const stranger = await readFile(`${nodes[0]!.stateDir}/sshd/ssh_host_ed25519_key`);
    await expect(sshRun(n3, stranger, n3.hostKeyFingerprint, 'echo ok')).rejects.toThrow(/authentication/i);
  });
});
