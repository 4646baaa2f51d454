import { execa } from 'execa';
import { beforeAll, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import { controlClient, startServices, type LocalNode } from '../../local-cluster/index.ts';
import { until } from '../migration/stack.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';

// Service discovery by name (docs/DESIGN.md §21) on a 2-node local cluster running drover's
// real processes: `web` (busybox) reaches `db:6379` (Redis; the port only its image EXPOSEs,
// as most Compose files leave it) by name through its node's proxy,
// before and after db moves to the other node with its data; a service on a disjoint network
// does not resolve db; another project's `db` (an alias there) on the same port is another service.
const LONG = 300_000;
const REDIS = (file: string) => JSON.stringify(['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--dbfilename', file]);

const SHOP = `services:
  web:
    image: drover/busybox:latest
    command: ["sleep", "3600"]
    networks: [back]
  db:
    image: drover/redis:latest
    command: ${REDIS('shop.rdb')}
    volumes: ["data:/data"]
    networks: [back]
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }
  lonely:
    image: drover/busybox:latest
    command: ["sleep", "3600"]
    networks: [front]
networks:
  back: {}
  front: {}
volumes:
  data:
    driver_opts: { size: 128M }
`;

// Application names are unique in the cluster, so the second project's Redis is "store",
// known in its project as "db" too (a network alias): the same name, db:6379, in two projects.
const BLOG = `services:
  store:
    image: drover/redis:latest
    command: ${REDIS('blog.rdb')}
    expose: ["6379"]
    networks:
      default: { aliases: [db] }
  reader:
    image: drover/busybox:latest
    command: ["sleep", "3600"]
`;

describeWith(LOCAL_CLUSTER, 'service discovery by name (2-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['busybox', 'redis'], poolSizeMiB: 512 });
  let api: ApiClient;
  const node = (i: number): LocalNode => cluster().nodes.find((n) => n.index === i)!;

  /** Runs `script` with busybox sh in drover's container of `app` on node `i`: exit code and output. */
  async function inContainer(i: number, app: string, script: string): Promise<{ code: number; out: string }> {
    const r = await execa('docker', ['-H', `unix://${node(i).dockerSocket}`, 'exec', `drover-${app}`, 'sh', '-c', script], { reject: false, timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
  }

  /** What Redis says to `CONFIG GET dbfilename` when web asks `db:6379` by name. */
  const askDb = (i: number, app = 'web') => inContainer(i, app, String.raw`printf 'CONFIG GET dbfilename\r\n' | nc -w 3 db 6379`);

  beforeAll(async () => {
    await startServices(cluster());
    api = controlClient(cluster());
    const topology = (pins: Record<string, number>) => {
      const byNode = new Map<number, string[]>();
      for (const [app, i] of Object.entries(pins)) byNode.set(i, [...(byNode.get(i) ?? []), app]);
      return `version: 1\nnodes:\n${[...byNode].map(([i, apps]) => `  "${node(i).address}": ${JSON.stringify(apps)}`).join('\n')}\n`;
    };
    await api.deploy({ project: 'shop', compose: { file: 'shop.yml', text: SHOP }, topology: { file: 'topology.yml', text: topology({ web: 1, db: 1, lonely: 2 }) } });
    await api.deploy({ project: 'blog', compose: { file: 'blog.yml', text: BLOG }, topology: { file: 'topology.yml', text: topology({ store: 2, reader: 2 }) } });
  }, LONG);

  it('lets web reach db:6379 by name, and only its own project\'s db', async () => {
    const answer = await until('web to reach db by name', async () => {
      const r = await askDb(1);
      return r.out.includes('shop.rdb') && r.out;
    }, 180_000, 500);
    expect(answer).not.toContain('blog.rdb');
    const other = await until('reader to reach its own project\'s db by name', async () => {
      const r = await askDb(2, 'reader');
      return r.out.includes('blog.rdb') && r.out;
    }, 120_000, 500);
    expect(other).not.toContain('shop.rdb');
    // The name leads to the node's proxy, not to a port published on the node's address.
    const hosts = await inContainer(1, 'web', 'cat /etc/hosts');
    expect(hosts.out).toMatch(/^10\.241\.\d+\.\d+\s+db$/m);
  }, LONG);

  it('does not resolve db in a service on a disjoint network', async () => {
    await until('lonely to run', async () => (await inContainer(2, 'lonely', 'true')).code === 0, 120_000, 500);
    const r = await askDb(2, 'lonely');
    expect(r.code).not.toBe(0);
    expect(r.out).not.toContain('shop.rdb');
    expect((await inContainer(2, 'lonely', 'cat /etc/hosts')).out).not.toMatch(/\sdb$/m);
  }, LONG);

  it('still reaches db by name after db moved to the other node with its data', async () => {
    const db = await api.application('db');
    expect(db.node_uuid).toBe(node(1).uuid);
    const { migration } = await api.moveContainer('db', node(2).uuid);
    const end = await until('the move to finish', async () => {
      const m = await api.migration(migration!.id);
      return isTerminal(m.phase) && m;
    }, 240_000, 250);
    expect(end).toMatchObject({ phase: 'done', error: null });
    // web was not touched: the same container, its name now leading to node 2.
    const answer = await until('web to reach the moved db by name', async () => {
      const r = await askDb(1);
      return r.out.includes('shop.rdb') && r.out;
    }, 120_000, 500);
    expect(answer).toContain('shop.rdb');
  }, LONG);
});
