/**
 * The etcd store against a real etcd (Debian's etcd-server) started by this file on
 * 127.0.0.1 ports found free, data in a temp directory, ended and removed after: the same
 * ConfigStore contract the file and memory stores pass, then what only a shared store has —
 * values small at 10k, another process's writes adopted, a watch that meets a compacted
 * revision, fenced writes, conflicting writers (docs/DESIGN.md §28).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import type { Desired } from '#common/model.ts';
import { EtcdClient } from '../../control-service/store/etcd-client.ts';
import { EtcdConfigStore, type EtcdStoreOptions } from '../../control-service/store/etcd-store.ts';
import { storeContract } from '../../control-service/testing/store.contract.ts';
import { startEtcd, stopEtcd, type EtcdCluster } from '../../local-cluster/etcd.ts';
import { describeWith } from '../support/require.ts';

let etcd: EtcdCluster;
const clients: EtcdClient[] = [];
let prefixes = 0;

function client(): EtcdClient {
  const c = new EtcdClient({ endpoints: etcd.endpoints });
  clients.push(c);
  return c;
}

function store(prefix: string, options: Partial<EtcdStoreOptions> = {}): EtcdConfigStore {
  return new EtcdConfigStore({ client: client(), log: silentLogger(), prefix, writer: 'test', ...options });
}

const id = (p: string, i: number) => `${p}-0000-4000-8000-${String(i).padStart(12, '0')}`;
const node = (i: number) => ({ uuid: id('00000001', i), host: `127.1.0.${(i % 250) + 1}`, labels: {}, transfer: {} });
const withNode = (i: number) => (d: Desired): Desired => ({ ...d, nodes: [...d.nodes, node(i) as never] });

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeWith(['etcd'], 'the etcd store on a real etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd(mkdtempSync(join(tmpdir(), 'drover-etcd-store-')));
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    if (etcd) await stopEtcd(etcd);
  });

  storeContract('EtcdConfigStore', async () => {
    const prefix = `/contract-${++prefixes}/`;
    return { store: store(prefix), reopen: async () => store(prefix) };
  });

  it('keeps every value well under etcd’s 1.5 MiB limit with 10k datasets and applications, and a move writes one chunk', async () => {
    const s = store('/big/');
    await s.load();
    const n = 10_000;
    const datasets = Array.from({ length: n }, (_, i) => ({ dataset_id: id('0000000d', i), primary: node(i % 200).uuid, metadata: { name: `vol${i}` } }));
    const applications = Array.from({ length: n }, (_, i) => ({
      name: `app${i}`,
      node_uuid: node(i % 200).uuid,
      image: 'registry.example/redis:7',
      environment: { ROLE: 'cache' },
      ports: [{ internal: 6379, external: 10000 + (i % 50000) }],
      volumes: [{ dataset_id: id('0000000d', i), mountpoint: '/data' }],
    }));
    const started = performance.now();
    await s.update((d) => ({ ...d, nodes: Array.from({ length: 200 }, (_, i) => node(i)), datasets, applications }) as never);
    const seedMs = performance.now() - started;
    const sizes = await s.valueSizes();
    const total = sizes.reduce((a, b) => a + b.bytes, 0);
    const head = sizes.find((v) => v.key.endsWith('/head'))!;
    process.stdout.write(`etcd store at 10k: ${sizes.length} values, ${total} bytes in all, largest ${sizes[0]!.bytes} bytes (${sizes[0]!.key.split('/').slice(2, 4).join('/')}), head ${head.bytes} bytes; seeded in ${seedMs.toFixed(0)} ms\n`);
    expect(sizes[0]!.bytes).toBeLessThan(1.5 * 1024 * 1024 / 4);
    // A handoff-like change of one entry rewrites the chunk that holds it, and the head.
    await s.update((d) => ({ ...d, datasets: d.datasets.map((x, i) => (i === 5000 ? { ...x, metadata: { name: 'renamed' } } : x)) }));
    process.stdout.write(`one dataset changed: ${s.lastWrite.chunksWritten} chunk written (${s.lastWrite.largestChunkBytes} bytes), head ${s.lastWrite.headBytes} bytes\n`);
    expect(s.lastWrite.chunksWritten).toBe(1);
    const again = store('/big/');
    const loaded = await again.load();
    expect(loaded.tag).toBe(s.current().tag);
    expect(loaded.desired.datasets[5000]!.metadata).toEqual({ name: 'renamed' });
    await again.close();
    await s.close();
  });

  it('adopts what another store writes, within moments', async () => {
    const writer = store('/shared/');
    const follower = store('/shared/');
    await writer.load();
    await follower.load();
    const seen: number[] = [];
    follower.onCommit((snap) => seen.push(snap.version));
    await writer.update(withNode(1));
    await writer.update(withNode(2));
    await until('the follower has version 2', () => follower.current().version === 2);
    expect(follower.current().tag).toBe(writer.current().tag);
    expect(seen.at(-1)).toBe(2);
    await follower.close();
    await writer.close();
  });

  it('re-reads and carries on when its watch meets a compacted revision', async () => {
    const writer = store('/compacted/');
    const behind = store('/compacted/', { follow: false });
    await writer.load();
    await writer.update(withNode(1));
    await behind.load();
    for (let i = 2; i <= 4; i++) await writer.update(withNode(i));
    const { revision } = await client().getPrefix('/compacted/', true);
    execFileSync('etcdctl', ['--endpoints', etcd.endpoints[0]!, 'compact', String(revision)], { stdio: 'pipe' });
    expect(behind.current().version).toBe(1);
    behind.follow(); // from just after its read: compacted away
    await until('the store behind has caught up', () => behind.current().version === 4);
    await writer.update(withNode(5));
    await until('and follows the next write', () => behind.current().version === 5);
    expect(behind.current().tag).toBe(writer.current().tag);
    await behind.close();
    await writer.close();
  });

  it('applies a write again on the newer document when another writer got there first', async () => {
    const a = store('/race/', { follow: false });
    const b = store('/race/', { follow: false });
    await a.load();
    await b.load();
    await a.update(withNode(1));
    const snap = await b.update(withNode(2)); // b still holds version 0: its first try conflicts
    expect(snap.version).toBe(2);
    expect(snap.desired.nodes.map((n) => n.host)).toEqual([node(1).host, node(2).host]);
    await a.close();
    await b.close();
  });

  it('writes nothing once its fence no longer holds, and says it is not the leader', async () => {
    const c = client();
    await c.txn([], [{ put: '/fenced/leader', value: 'me' }]);
    const { found } = await c.getMany(['/fenced/leader']);
    let fence = { key: '/fenced/leader', target: 'create' as const, revision: found[0]!.createRevision };
    const s = store('/fenced/', { fence: () => fence });
    await s.load();
    await s.update(withNode(1));
    // Another process took the key (deleted and made again: a new create revision).
    await c.txn([], [{ delete: '/fenced/leader' }]);
    await c.txn([], [{ put: '/fenced/leader', value: 'other' }]);
    const err = await s.update(withNode(2)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('DROVER_NOT_LEADER');
    const reread = store('/fenced/', { follow: false });
    expect((await reread.load()).desired.nodes).toHaveLength(1);
    fence = { ...fence, revision: 0 };
    await reread.close();
    await s.close();
  });
});
