/**
 * The vault of project files and sealed secrets in etcd (docs/DESIGN.md §31), against a real
 * etcd started by this file (127.0.0.1, free ports, temp data, removed after): a content stored
 * through one control service's vault is read through another's; a content larger than etcd's
 * request limit is cut in parts and read back whole; only sealed bytes reach etcd; the sweep's
 * removal keeps a content stored again meanwhile; a second service with another secrets key is
 * refused, naming both fingerprints and never the key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkSharedKey, EtcdVault, PART_BYTES } from '../../control-service/files/etcd-vault.ts';
import { randomSealingKey, sealingKey } from '../../control-service/files/sealing.ts';
import { EtcdClient } from '../../control-service/store/etcd-client.ts';
import { startEtcd, stopEtcd, type EtcdCluster } from '../../local-cluster/etcd.ts';
import { describeWith } from '../support/require.ts';

let etcd: EtcdCluster;
const clients: EtcdClient[] = [];

function client(): EtcdClient {
  const c = new EtcdClient({ endpoints: etcd.endpoints });
  clients.push(c);
  return c;
}

describeWith(['etcd'], 'the vault in etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd(mkdtempSync(join(tmpdir(), 'drover-etcd-vault-')));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    if (etcd) await stopEtcd(etcd);
  });

  it('a file and a secret stored through one control service are read through another with the shared key', async () => {
    const master = randomBytes(32);
    const a = new EtcdVault(client(), '/v1/', sealingKey(master));
    const b = new EtcdVault(client(), '/v1/', sealingKey(master));
    const file = await a.put('file', Buffer.from('listen 80;\n'));
    const secret = await a.put('secret', Buffer.from('hunter2'));
    expect((await b.get('file', file)).toString()).toBe('listen 80;\n');
    expect((await b.get('secret', secret)).toString()).toBe('hunter2');
    expect((await b.list()).map((c) => `${c.kind}/${c.id}`).sort()).toEqual([`file/${file}`, `secret/${secret}`].sort());
    // Only sealed bytes are in etcd.
    const { found } = await clients[0]!.getPrefix('/v1/contents/part/secret/');
    expect(found).toHaveLength(1);
    expect(found[0]!.value.includes(Buffer.from('hunter2'))).toBe(false);
  });

  it('a content larger than one etcd request is stored in parts and read back whole', async () => {
    const vault = new EtcdVault(client(), '/v2/', randomSealingKey());
    const big = randomBytes(PART_BYTES * 3 + 1234); // over etcd's 1.5 MiB request limit
    const id = await vault.put('file', big);
    expect((await vault.get('file', id)).equals(big)).toBe(true);
    const { found } = await clients.at(-1)!.getPrefix(`/v2/contents/part/file/${id}/`, true);
    expect(found).toHaveLength(4);
  });

  it('the sweep keeps a content another control service stored again after the sweep read it, and removes it otherwise', async () => {
    let now = 1_000;
    const key = randomSealingKey();
    const sweeper = new EtcdVault(client(), '/v3/', key, () => now);
    const deployer = new EtcdVault(client(), '/v3/', key, () => now);
    const id = await deployer.put('file', Buffer.from('a'));
    now = 5_000;
    await deployer.put('file', Buffer.from('a')); // stored again: stored_at 5000
    expect(await sweeper.removeIfStoredBefore('file', id, 2_000)).toBe(false);
    expect(await sweeper.removeIfStoredBefore('file', id, 6_000)).toBe(true);
    await expect(deployer.get('file', id)).rejects.toMatchObject({ code: 'DROVER_FILE_NOT_FOUND' });
    expect((await clients.at(-1)!.getPrefix('/v3/contents/', true)).found).toEqual([]);
  });

  it('a control service with another secrets key is refused naming both fingerprints, never the key', async () => {
    const first = sealingKey(randomBytes(32));
    const other = randomBytes(32);
    expect(await checkSharedKey(client(), '/v4/', first, '/a/control.key')).toBe(true);
    expect(await checkSharedKey(client(), '/v4/', first, '/b/control.key')).toBe(false);
    const err = await checkSharedKey(client(), '/v4/', sealingKey(other), '/c/control.key').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'DROVER_SECRET_KEY_MISMATCH' });
    expect((err as Error).message).toContain(first.fingerprint);
    expect((err as Error).message).toContain(sealingKey(other).fingerprint);
    expect((err as Error).message).not.toContain(other.toString('hex'));
  });
});
