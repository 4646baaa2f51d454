import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import type { Node } from '#common/model.ts';
import { datasetIdFor } from '#common/dataset-id.ts';
import { parseDeployment, UNPLACED_PRIMARY } from './index.ts';

// Real-world-shaped files under test/fixtures/: each is accepted with the model below, or
// refused with the exact message (file:line:column, service, key).
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
const N1 = '11111111-1111-4111-8111-111111111111';
const N2 = '22222222-2222-4222-8222-222222222222';
const nodes: Node[] = [
  { uuid: N1, host: '127.0.0.11', labels: { disk: 'ssd' }, transfer: {} },
  { uuid: N2, host: '127.0.0.12', labels: {}, transfer: {} },
];
const noPins = { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' };

function read(dir: string, name: string) {
  return { file: name, text: readFileSync(join(fixtures, dir, name), 'utf8') };
}
function parse(name: string, topology = noPins) {
  return parseDeployment({ project: 'demo', compose: read('compose', name), topology, nodes });
}
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('accepted a file that must be refused');
}
const dataset = (volume: string, maximum_size: number | null, primary = UNPLACED_PRIMARY) => ({
  dataset_id: datasetIdFor('demo', volume),
  primary,
  maximum_size,
  metadata: { name: `demo_${volume}`, project: 'demo' },
  deleted: false,
  replication: null,
  replicas: [],
});

describe('accepted application files', () => {
  it('reads a redis service whose named volume becomes a sized dataset', () => {
    expect(parse('redis.yml')).toEqual({
      applications: [
        {
          name: 'redis',
          image: 'redis:7.2-bookworm',
          command_line: ['redis-server', '--appendonly', 'yes', '--save', '60 1'],
          environment: {},
          ports: [{ internal: 6379, external: 6379 }],
          volumes: [{ dataset_id: datasetIdFor('demo', 'redis-data'), mountpoint: '/data' }],
          links: [],
          restart_policy: { name: 'always' },
          health_check: {
            type: 'exec',
            command: ['redis-cli', 'ping'],
            initial_delay_seconds: 5,
            period_seconds: 10,
            timeout_seconds: 3,
            failure_threshold: 5,
          },
          labels: { 'com.example.team': 'platform' },
          project: 'demo',
          replication: null,
        },
      ],
      datasets: [dataset('redis-data', 2 * 1024 ** 3)],
    });
  });

  it('reads a web and db pair with links, depends_on, anchors, healthchecks and two volumes', () => {
    const parsed = parse('web-db.yml', read('topology', 'two-nodes.yml'));
    expect(parsed).toEqual({
      applications: [
        {
          name: 'web',
          node_uuid: N2,
          pinned_node_uuid: N2,
          image: 'registry.example/shop-web:1.4.2',
          command_line: ['gunicorn', '--bind', '0.0.0.0:8000', 'shop.wsgi'],
          entrypoint: ['/usr/local/bin/docker-entrypoint.sh'],
          environment: { TZ: 'Europe/Paris', LOG_LEVEL: 'info', DATABASE_HOST: 'db', WORKERS: '4', DEBUG: 'false' },
          ports: [{ internal: 8000, external: 8080 }],
          volumes: [],
          links: [
            { alias: 'redis', local_port: 6379, remote_port: 6380 },
            { alias: 'db', local_port: 5432, remote_port: 5432 },
          ],
          restart_policy: { name: 'on-failure', maximum_retry_count: 5 },
          health_check: {
            type: 'exec',
            command: ['/bin/sh', '-c', 'curl -fsS http://localhost:8000/health || exit 1'],
            initial_delay_seconds: 0,
            period_seconds: 90,
            timeout_seconds: 10,
            failure_threshold: 3,
          },
          labels: {},
          depends_on: [{ application: 'db', condition: 'service_started' }],
          project: 'demo',
          replication: null,
        },
        {
          name: 'db',
          node_uuid: N1,
          pinned_node_uuid: N1,
          image: 'postgres:16',
          environment: { POSTGRES_PASSWORD: 's3cret$pass', POSTGRES_DB: 'shop' },
          ports: [{ internal: 5432, external: 5432 }],
          volumes: [
            { dataset_id: datasetIdFor('demo', 'pgdata'), mountpoint: '/var/lib/postgresql/data' },
            { dataset_id: datasetIdFor('demo', 'pgwal'), mountpoint: '/var/lib/postgresql/wal' },
          ],
          links: [],
          restart_policy: { name: 'always' },
          health_check: {
            type: 'exec',
            command: ['/bin/sh', '-c', 'pg_isready -U postgres'],
            initial_delay_seconds: 0,
            period_seconds: 5,
            timeout_seconds: 30,
            failure_threshold: 10,
          },
          labels: {},
          project: 'demo',
          replication: null,
        },
        {
          name: 'cache',
          image: 'redis:7',
          environment: {},
          ports: [{ internal: 6379, external: 6380 }],
          volumes: [],
          links: [],
          restart_policy: { name: 'never' },
          labels: {},
          project: 'demo',
          replication: null,
        },
      ],
      datasets: [dataset('pgdata', 10 * 1024 ** 3, N1), dataset('pgwal', null, N1)],
    });
  });

  it('reads deploy.resources limits, Swarm placement constraints and the x-drover extensions', () => {
    const [search, kibana] = parse('resources.yml').applications;
    expect(search).toMatchObject({
      environment: { 'discovery.type': 'single-node' },
      cpu_shares: 512,
      memory_limit: 2 * 1024 ** 3,
      health_check: { type: 'http', port: 9200, path: '/_cluster/health', period_seconds: 15, timeout_seconds: 1, failure_threshold: 3 },
      placement: {
        constraints: ['node.labels.disk == ssd', 'node.host != 127.0.0.13', `node.uuid == ${N2}`],
        affinity: [],
        anti_affinity: ['kibana'],
        strategy: 'binpack',
      },
    });
    expect(kibana).toMatchObject({ cpu_shares: 256, memory_limit: 512 * 1024 ** 2, health_check: { type: 'tcp', port: 5601 } });
    expect(kibana).not.toHaveProperty('placement');
    expect(parse('resources.yml').datasets).toEqual([dataset('esdata', 2.5 * 1024 ** 3)]);
  });

  it('reads a Flocker application file, its one volume named after the application', () => {
    expect(parse('flocker-app.yml')).toEqual({
      applications: [
        {
          name: 'site-example.com',
          image: 'example/website',
          environment: { WP_ADMIN_USERNAME: 'administrator', WP_ADMIN_PASSWORD: 'password' },
          ports: [{ internal: 80, external: 8080 }],
          volumes: [],
          links: [{ alias: 'db', local_port: 3306, remote_port: 3306 }],
          restart_policy: { name: 'never' },
          labels: {},
          project: 'demo',
          replication: null,
        },
        {
          name: 'mysql-example',
          image: 'mysql:5.6.17',
          environment: {},
          ports: [{ internal: 3306, external: 3306 }],
          volumes: [{ dataset_id: datasetIdFor('demo', 'mysql-example'), mountpoint: '/var/lib/mysql' }],
          links: [],
          restart_policy: { name: 'on-failure', maximum_retry_count: 10 },
          cpu_shares: 512,
          memory_limit: 100000000,
          labels: {},
          project: 'demo',
          replication: null,
        },
      ],
      datasets: [dataset('mysql-example', 500 * 1024 ** 2)],
    });
  });

  it('reads a Fig file: services at the top, an anonymous volume named after its service, links to ports', () => {
    expect(parse('fig.yml')).toEqual({
      applications: [
        {
          name: 'mysql',
          image: 'mysql:5.6.17',
          environment: { MYSQL_ROOT_PASSWORD: 'clusterhq' },
          ports: [{ internal: 3306, external: 3306 }],
          volumes: [{ dataset_id: datasetIdFor('demo', 'mysql'), mountpoint: '/var/lib/mysql' }],
          links: [],
          restart_policy: { name: 'never' },
          memory_limit: 100000000,
          labels: {},
          project: 'demo',
          replication: null,
        },
        {
          name: 'wordpress',
          image: 'wordpress:4.0',
          environment: {},
          ports: [{ internal: 80, external: 80 }],
          volumes: [],
          links: [{ alias: 'db', local_port: 3306, remote_port: 3306 }],
          restart_policy: { name: 'never' },
          labels: {},
          project: 'demo',
          replication: null,
        },
      ],
      datasets: [dataset('mysql', null)],
    });
  });

  it('derives the same dataset id for a project and volume every time, v4-shaped', () => {
    expect(datasetIdFor('demo', 'pgdata')).toBe('d295ba06-6050-42b2-b7df-fd33052c0d5d');
    expect(datasetIdFor('other', 'pgdata')).not.toBe(datasetIdFor('demo', 'pgdata'));
  });
});

describe('refused application files', () => {
  const cases: [string, string][] = [
    ['refuse-build.yml', 'refuse-build.yml:3:5: service "app": unsupported key "build": drover runs images and does not build them; build the image first and name it with "image:"'],
    ['refuse-privileged.yml', 'refuse-privileged.yml:4:5: service "web": unsupported key "privileged"'],
    [
      'refuse-bind-mount.yml',
      'refuse-bind-mount.yml:5:9: service "web": key "volumes[0]": "./html": a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add ":ro" to ship a project file with the deploy)',
    ],
    [
      'refuse-network-mode.yml',
      'refuse-network-mode.yml:4:5: service "agent": unsupported key "network_mode": drover connects applications through its routing proxy; services reach each other by name on the project\'s networks ("networks:"), and "ports:" publish on every node',
    ],
    ['refuse-bad-port.yml', 'refuse-bad-port.yml:6:9: service "web": key "ports[1]": "99999:80" is not a port mapping: ports are numbers 1-65535 ("PUBLISHED:TARGET", e.g. "8080:80")'],
    [
      'refuse-host-ip.yml',
      'refuse-host-ip.yml:5:9: service "web": key "ports[0]": "[::1]:8080:80": an IPv6 host address is not supported: drover\'s nodes listen on IPv4 addresses',
    ],
    ['refuse-bad-size.yml', 'refuse-bad-size.yml:8:7: key "volumes.pgdata.driver_opts.size": "10 potatoes" is not a size (bytes, or a number with K, M, G or T: "500M", "2.5G")'],
    ['refuse-small-size.yml', 'refuse-small-size.yml:8:7: key "volumes.pgdata.driver_opts.size": "10M" is smaller than the smallest dataset, 64M'],
    ['refuse-undeclared-volume.yml', 'refuse-undeclared-volume.yml:4:15: service "db": key "volumes[0]": volume "pgdata" is not declared under the top-level "volumes:"'],
    [
      'refuse-shared-volume.yml',
      'refuse-shared-volume.yml:7:15: service "reader": key "volumes[0]": volume "shared" is already mounted by service "writer"; a dataset belongs to one application and moves with it',
    ],
    ['refuse-flocker-key.yml', 'refuse-flocker-key.yml:5:5: service "web": unsupported key "hostname"'],
  ];
  it.each(cases)('refuses %s naming the file, the service and the key', (name, message) => {
    expect(refusal(() => parse(name))).toBe(message);
  });

  it('puts the file, service, key and position in the error detail', () => {
    try {
      parse('refuse-privileged.yml');
    } catch (err) {
      expect(isDroverError(err) && err.detail).toMatchObject({ file: 'refuse-privileged.yml', service: 'web', key: 'privileged', line: 4, column: 5 });
    }
    expect.assertions(1);
  });
});

describe('topology files', () => {
  const compose = read('compose', 'web-db.yml');
  const withTopology = (name: string) => () => parseDeployment({ project: 'demo', compose, topology: read('topology', name), nodes });
  it('leaves applications the topology does not name to the scheduler', () => {
    const parsed = withTopology('empty.yml')();
    expect(parsed.applications.map((a) => a.node_uuid)).toEqual([undefined, undefined, undefined]);
    expect(parsed.datasets.map((d) => d.primary)).toEqual([UNPLACED_PRIMARY, UNPLACED_PRIMARY]);
  });
  it.each([
    ['unknown-node.yml', 'unknown-node.yml:4:3: No known node with address "10.9.9.9"'],
    ['unknown-app.yml', 'unknown-app.yml:3:22: node "127.0.0.11": application "worker" is not in web-db.yml'],
    ['twice.yml', 'twice.yml:4:18: node "127.0.0.12": application "db" appears more than once'],
    ['not-an-address.yml', 'not-an-address.yml:3:3: node "node1.example.com" is not an IPv4 address (a topology names nodes by address)'],
  ])('refuses %s with the file named', (name, message) => {
    expect(refusal(withTopology(name))).toBe(message);
  });
});
