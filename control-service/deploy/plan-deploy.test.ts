import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { Desired, type Application, type Node } from '#common/model.ts';
import { datasetIdFor } from '#common/dataset-id.ts';
import { parseDeployment, planDeploy, UNPLACED_PRIMARY } from './index.ts';

const N1 = '11111111-1111-4111-8111-111111111111';
const N2 = '22222222-2222-4222-8222-222222222222';
const nodes: Node[] = [
  { uuid: N1, host: '127.0.0.11', labels: {}, transfer: {} },
  { uuid: N2, host: '127.0.0.12', labels: {}, transfer: {} },
];
const COMPOSE = `
services:
  web:
    image: nginx:1.25
    ports: ["8080:80"]
    links: [db]
  db:
    image: postgres:16
    ports: ["5432:5432"]
    volumes: [pgdata:/var/lib/postgresql/data]
volumes:
  pgdata:
    driver_opts: { size: 1G }
`;
const TOPOLOGY = 'version: 1\nnodes:\n  "127.0.0.11": [db]\n';

function parsed(compose = COMPOSE, topology = TOPOLOGY, project = 'shop') {
  return parseDeployment({ project, compose: { file: 'compose.yml', text: compose }, topology: { file: 'topology.yml', text: topology }, nodes });
}
const empty = Desired.parse({ nodes });
const pgdata = datasetIdFor('shop', 'pgdata');
const other: Application = Desired.parse({
  applications: [{ name: 'blog', image: 'ghost:5', ports: [{ internal: 2368, external: 80 }], project: 'blog' }],
}).applications[0]!;

describe('planDeploy', () => {
  it('adds the applications and datasets of a first deploy', () => {
    const { desired, diff } = planDeploy(empty, parsed(), 'shop');
    expect(diff).toEqual({
      added: ['application "web"', 'application "db"', `dataset "shop_pgdata" (${pgdata})`],
      changed: [],
      removed: [],
      unchanged: [],
    });
    expect(desired.applications.map((a) => [a.name, a.node_uuid])).toEqual([
      ['web', undefined],
      ['db', N1],
    ]);
    expect(desired.datasets).toEqual([
      { dataset_id: pgdata, primary: N1, maximum_size: 1024 ** 3, metadata: { name: 'shop_pgdata', project: 'shop' }, deleted: false, replication: null, replicas: [] },
    ]);
  });

  it('changes nothing when the same files are applied twice', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    // Through JSON, as the store keeps it: key order and dropped undefined must not matter.
    const stored = Desired.parse(JSON.parse(JSON.stringify(first)));
    const second = planDeploy(stored, parsed(), 'shop');
    expect(second.desired).toEqual(stored);
    expect(second.diff).toEqual({
      added: [],
      changed: [],
      removed: [],
      unchanged: ['application "web"', 'application "db"', `dataset "shop_pgdata" (${pgdata})`],
    });
  });

  it('reports an application with instances unchanged when the same files come again after the scheduler placed them', () => {
    const compose = 'services:\n  api:\n    image: busybox\n    deploy: { replicas: 2 }\n';
    const first = planDeploy(empty, parsed(compose, 'version: 1\nnodes: {}\n'), 'shop').desired;
    const placed = Desired.parse({ ...first, applications: first.applications.map((a) => ({ ...a, placed: [{ id: 1, node_uuid: N1 }, { id: 2, node_uuid: N2 }], next_instance: 3 })) });
    const second = planDeploy(placed, parsed(compose, 'version: 1\nnodes: {}\n'), 'shop');
    expect(second.diff.changed).toEqual([]);
    expect(second.diff.unchanged).toEqual(['application "api"']);
    expect(second.desired.applications[0]).toMatchObject({ placed: [{ id: 1, node_uuid: N1 }, { id: 2, node_uuid: N2 }], next_instance: 3 });
    const more = planDeploy(placed, parsed(compose.replace('replicas: 2', 'replicas: 3'), 'version: 1\nnodes: {}\n'), 'shop');
    expect(more.diff.changed).toEqual(['application "api": instances']);
  });

  it('removes a service dropped from the file and keeps its dataset, saying so', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    const withoutDb = COMPOSE.replace(/  db:[\s\S]*$/, '').replace('    links: [db]\n', '');
    const { desired, diff } = planDeploy(first, parsed(withoutDb, 'version: 1\nnodes: {}\n'), 'shop');
    expect(desired.applications.map((a) => a.name)).toEqual(['web']);
    expect(desired.datasets).toEqual(first.datasets);
    expect(diff).toEqual({
      added: [],
      changed: ['application "web": links, peers'],
      removed: [`application "db" (its dataset "shop_pgdata" (${pgdata}) kept, not deleted)`],
      unchanged: [],
    });
    const again = planDeploy(desired, parsed(withoutDb, 'version: 1\nnodes: {}\n'), 'shop');
    expect(again.diff).toEqual({
      added: [],
      changed: [],
      removed: [],
      unchanged: ['application "web"', `dataset "shop_pgdata" (${pgdata}) (no longer used by any service; kept, not deleted)`],
    });
  });

  it('leaves applications and datasets of other projects untouched, in place', () => {
    const otherDataset = { dataset_id: datasetIdFor('blog', 'content'), primary: N2, maximum_size: null, metadata: { name: 'blog_content', project: 'blog' }, deleted: false, replication: null, replicas: [] };
    const start = Desired.parse({ nodes, applications: [other], datasets: [otherDataset] });
    const { desired } = planDeploy(start, parsed(), 'shop');
    expect(desired.applications[0]).toEqual(other);
    expect(desired.datasets[0]).toEqual(otherDataset);
    expect(desired.applications.map((a) => a.name)).toEqual(['blog', 'web', 'db']);
    expect(desired.nodes).toEqual(start.nodes);
  });

  it('keeps an application where the scheduler put it when the topology does not name it', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    const scheduled = { ...first, applications: first.applications.map((a) => (a.name === 'web' ? { ...a, node_uuid: N2 } : a)) };
    const { desired, diff } = planDeploy(scheduled, parsed(), 'shop');
    expect(desired.applications.find((a) => a.name === 'web')?.node_uuid).toBe(N2);
    expect(diff.changed).toEqual([]);
  });

  it('does not undo a move when the topology is unchanged, and moves the data when the topology changes', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    const moved = {
      ...first,
      applications: first.applications.map((a) => (a.name === 'db' ? { ...a, node_uuid: N2 } : a)),
      datasets: first.datasets.map((d) => ({ ...d, primary: N2 })),
    };
    const same = planDeploy(moved, parsed(), 'shop');
    expect(same.desired).toEqual(moved);
    expect(same.diff.changed).toEqual([]);

    const toN2 = planDeploy(first, parsed(COMPOSE, 'version: 1\nnodes:\n  "127.0.0.12": [db]\n'), 'shop');
    expect(toN2.desired.applications.find((a) => a.name === 'db')).toMatchObject({ node_uuid: N2, pinned_node_uuid: N2 });
    expect(toN2.desired.datasets.map((d) => d.primary)).toEqual([N2]);
    expect(toN2.diff.changed).toEqual([
      `application "db": node_uuid, pinned_node_uuid (moves from node ${N1} to ${N2} with its data)`,
      `dataset "shop_pgdata" (${pgdata}): primary`,
    ]);
  });

  it('gives an unplaced application the placeholder primary until it is placed', () => {
    const { desired } = planDeploy(empty, parsed(COMPOSE, 'version: 1\nnodes: {}\n'), 'shop');
    expect(desired.datasets.map((d) => d.primary)).toEqual([UNPLACED_PRIMARY]);
  });

  it('reports a changed size as a changed dataset', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    const { diff } = planDeploy(first, parsed(COMPOSE.replace('size: 1G', 'size: 2G')), 'shop');
    expect(diff.changed).toEqual([`dataset "shop_pgdata" (${pgdata}): maximum_size`]);
  });

  it('refuses an application name or a published port that another project owns', () => {
    const start = Desired.parse({ nodes, applications: [{ ...other, name: 'web', ports: [] }] });
    expect(() => planDeploy(start, parsed(), 'shop')).toThrow('application "web" already exists in project "blog"');
    const portTaken = Desired.parse({ nodes, applications: [{ ...other, ports: [{ internal: 80, external: 8080 }] }] });
    try {
      planDeploy(portTaken, parsed(), 'shop');
    } catch (err) {
      expect(isDroverError(err, 'DROVER_CONFLICT') && err.message).toBe(
        'service "web": published port 8080 is already used by application "blog" in project "blog"',
      );
    }
    expect.assertions(2);
  });

  it('adopts an existing dataset a Flocker file names by id, keeping its name and primary', () => {
    const id = '3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6a7b';
    const existing = { dataset_id: id, primary: N2, maximum_size: null, metadata: { name: 'legacy-db' }, deleted: false, replication: null, replicas: [] };
    const start = Desired.parse({ nodes, datasets: [existing] });
    const flocker = `version: 1\napplications:\n  db:\n    image: mysql:5.6\n    volume:\n      mountpoint: /var/lib/mysql\n      dataset_id: "${id}"\n`;
    const { desired, diff } = planDeploy(start, parsed(flocker, 'version: 1\nnodes: {}\n'), 'shop');
    expect(desired.datasets).toEqual([{ ...existing, metadata: { name: 'legacy-db', project: 'shop' } }]);
    expect(desired.applications[0]?.volumes).toEqual([{ dataset_id: id, mountpoint: '/var/lib/mysql' }]);
    expect(diff.changed).toEqual([`dataset "legacy-db" (${id}): metadata`]);
  });

  it('refuses to reuse a deleted dataset', () => {
    const first = planDeploy(empty, parsed(), 'shop').desired;
    const deleted = { ...first, datasets: first.datasets.map((d) => ({ ...d, deleted: true })) };
    expect(() => planDeploy(deleted, parsed(), 'shop')).toThrow(`dataset "shop_pgdata" (${pgdata}) was deleted`);
  });
});
