import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicaStatus } from '#common/model.ts';
import { datasetId, harness, nodeId, observedDataset, report, type Harness } from '../testing/harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const D = datasetId(1);
const policy = { replicas: 2, interval_seconds: 2 };

async function cluster(nodes = [1, 2, 3], options: Parameters<typeof harness>[0] = {}) {
  h = await harness(options);
  for (const i of nodes) await h.request('POST', '/v1/drover/agents/report', report(i));
  await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: D });
}

const status = (replica: number, extra: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  dataset_id: D,
  replica: nodeId(replica),
  state: 'ok',
  newest_snapshot: 'drover-20270115T080000000Z-1',
  newest_snapshot_created_at: 1_799_999_998_000,
  lag_seconds: 2,
  bytes_sent_total: 4096,
  last_success_at: 1_799_999_999_000,
  last_error: null,
  ...extra,
});

describe('PUT /v1/drover/datasets/<id>/replication', () => {
  it('stores the policy with its defaults and chooses replicas other than the primary, changing nothing else', async () => {
    await cluster();
    const answer = await h.request('PUT', `/v1/drover/datasets/${D}/replication`, policy);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({
      dataset_id: D,
      primary: nodeId(1),
      replication: { replicas: 2, interval_seconds: 2, retention: { primary: '1x1m(keep=all) | 24x1h | 7x1d', replicas: '1x1m(keep=all) | 24x1h | 7x1d' } },
      replicas: [nodeId(2), nodeId(3)],
    });
    expect(h.control.desired.migrations).toEqual([]);
  });

  it('refuses bad values naming each field, and changes nothing', async () => {
    await cluster();
    const before = h.control.snapshot.version;
    const answer = await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: -1, interval_seconds: 0.5, retention: { primary: '24x1h | often', replicas: '7y' }, speed: 1 });
    expect(answer.statusCode).toBe(400);
    const errors: string[] = answer.json().errors;
    for (const path of ['replicas:', 'interval_seconds:', 'retention.primary: "often" is not a grid term', 'retention.replicas: "7y" is not a grid term', 'speed']) {
      expect(errors.some((e) => e.includes(path))).toBe(true);
    }
    expect(h.control.snapshot.version).toBe(before);
  });

  it('answers 404 for an unknown dataset, and null stops replicating', async () => {
    await cluster();
    expect((await h.request('PUT', `/v1/drover/datasets/${datasetId(9)}/replication`, policy)).statusCode).toBe(404);
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, policy);
    const stopped = await h.request('PUT', `/v1/drover/datasets/${D}/replication`, 'null');
    expect(stopped.statusCode).toBe(200);
    expect(stopped.json()).toMatchObject({ replication: null, replicas: [] });
  });

  it("is accepted in Flocker's dataset creation as drover's extension field", async () => {
    await cluster();
    const created = await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), replication: { replicas: 1 } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ replication: { replicas: 1, interval_seconds: 10 }, replicas: [nodeId(1)] });
  });
});

describe('freeze_during_snapshot', () => {
  it('is refused on a dataset no application mounts, naming the field, and changes nothing', async () => {
    await cluster();
    const before = h.control.snapshot.version;
    const answer = await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { ...policy, freeze_during_snapshot: true });
    expect(answer.statusCode).toBe(400);
    expect(answer.body).toContain('replication.freeze_during_snapshot');
    const created = await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(2), replication: { replicas: 1, freeze_during_snapshot: true } });
    expect(created.statusCode).toBe(400);
    expect(created.body).toContain('replication.freeze_during_snapshot');
    expect(h.control.snapshot.version).toBe(before);
    expect((await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { ...policy, freeze_during_snapshot: 'yes' })).statusCode).toBe(400);
  });

  it("is accepted in an application's policy and copied onto the datasets it mounts", async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', node_uuid: nodeId(1), volumes: [{ dataset_id: D, mountpoint: '/data' }] });
    const app = await h.request('PUT', '/v1/drover/applications/db/replication', { ...policy, freeze_during_snapshot: true });
    expect(app.statusCode).toBe(200);
    expect(h.control.desired.datasets[0]).toMatchObject({ replication: { replicas: 2, freeze_during_snapshot: true } });
    // The dataset is mounted now: its own policy may ask for it too.
    expect((await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { ...policy, freeze_during_snapshot: true })).statusCode).toBe(200);
  });
});

describe('an application policy', () => {
  it('is copied onto its datasets, shown in its status, and neither restarts nor moves it', async () => {
    await cluster();
    await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'redis', node_uuid: nodeId(1), volumes: [{ dataset_id: D, mountpoint: '/data' }], replication: { replicas: 1 } });
    expect(h.control.desired.datasets[0]).toMatchObject({ replication: { replicas: 1 }, replicas: [nodeId(2)] });
    const app = await h.request('PUT', '/v1/drover/applications/db/replication', policy);
    expect(app.statusCode).toBe(200);
    expect(app.json()).toMatchObject({ name: 'db', node_uuid: nodeId(1), replication: { replicas: 2, interval_seconds: 2 } });
    expect(h.control.desired.datasets[0]).toMatchObject({ replication: { replicas: 2 }, replicas: [nodeId(2), nodeId(3)] });
    expect(h.control.desired.migrations).toEqual([]);
    expect((await h.request('GET', '/v1/drover/applications/db')).json().replicas).toEqual([
      { node: nodeId(2), lag_seconds: null, state: 'seeding' },
      { node: nodeId(3), lag_seconds: null, state: 'seeding' },
    ]);
    expect((await h.request('PUT', '/v1/drover/applications/nope/replication', policy)).statusCode).toBe(404);
  });
});

describe('GET /v1/drover/replication', () => {
  it("shows chosen replicas as seeding, then the primary's report with the lag brought up to now", async () => {
    await cluster();
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, policy);
    expect((await h.request('GET', '/v1/drover/replication')).json()).toEqual([
      {
        dataset_id: D,
        application: null,
        primary: nodeId(1),
        policy: expect.objectContaining({ replicas: 2 }),
        replicas: [nodeId(2), nodeId(3)].map((node) => ({ node, state: 'seeding', lag_seconds: null, newest_snapshot: null, bytes_sent_total: 0, last_success_at: null, last_error: null, problem: null })),
        problem: null,
        kept: [],
      },
    ]);
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status(2), status(3, { state: 'diverged', lag_seconds: 30, last_error: { code: 'DROVER_REPLICA_DIVERGED', message: 'n3 has snapshots n1 lacks' } })] }));
    h.clock.advance(1500);
    const [entry] = (await h.request('GET', '/v1/drover/replication')).json();
    expect(entry.replicas[0]).toMatchObject({ node: nodeId(2), state: 'ok', lag_seconds: 3.5, bytes_sent_total: 4096, problem: null });
    expect(entry.replicas[1].problem).toMatch(/^diverged: .*DROVER_REPLICA_DIVERGED/);
  });

  it('lists the copies a node reports keeping aside after a failover (docs/DESIGN.md §18)', async () => {
    await cluster();
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, policy);
    const name = `pool3/drover-diverged/${D}-g5`;
    await h.request('POST', '/v1/drover/agents/report', report(3, { diverged: [{ dataset_id: D, name, generation: 5, used_bytes: 4096 }] }));
    const [entry] = (await h.request('GET', '/v1/drover/replication')).json();
    expect(entry.kept).toEqual([expect.objectContaining({ node: nodeId(3), name, generation: 5, used_bytes: 4096 })]);
  });

  it('reports a replica more than 3 intervals behind as a problem, with an event when it becomes one and when it stops', async () => {
    await cluster();
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: 1, interval_seconds: 2 });
    const from = h.control.events.since(0).at(-1)!.id;
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status(2, { lag_seconds: 1 })] }));
    h.control.tick();
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status(2, { lag_seconds: 7 })] }));
    h.control.tick();
    await h.request('POST', '/v1/drover/agents/report', report(1, { replication: [status(2, { lag_seconds: 1 })] }));
    h.control.tick();
    const events = h.control.events.since(from).filter((r) => r.event.type === 'replication').map((r) => r.event.data);
    expect(events).toEqual([
      { dataset_id: D, replica: nodeId(2), state: 'ok', lag_seconds: 1, problem: null },
      { dataset_id: D, replica: nodeId(2), state: 'ok', lag_seconds: 7, problem: '7s behind the primary, more than 3 × the interval (2s)' },
      { dataset_id: D, replica: nodeId(2), state: 'ok', lag_seconds: 1, problem: null },
    ]);
  });

  it('names why fewer replicas than asked are placed', async () => {
    await cluster([1, 2]);
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: 3 });
    expect((await h.request('GET', '/v1/drover/replication')).json()[0].problem).toBe('1 of 3 replicas placed: 1 node up besides the primary');
  });
});

describe('replicas over time', () => {
  it('replaces a replica whose node stays silent longer than the set time, and keeps the copy in its view', async () => {
    await cluster([1, 2, 3], { replicaReplaceAfterMs: 60_000 });
    await h.request('PUT', `/v1/drover/datasets/${D}/replication`, { replicas: 1 });
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(2)]);
    const view = (i: number) => JSON.parse(h.control.views.get(nodeId(i)).body) as { datasets: { dataset_id: string }[] };
    expect(view(2).datasets.map((d) => d.dataset_id)).toEqual([D]);
    expect(view(3).datasets).toEqual([]);
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false })] }));
    for (let s = 0; s < 70; s++) {
      h.clock.advance(1000);
      await h.request('POST', '/v1/drover/agents/report', report(1));
      await h.request('POST', '/v1/drover/agents/report', report(3));
      h.control.tick();
      await new Promise((r) => setImmediate(r));
    }
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(3)]);
    expect(view(3).datasets.map((d) => d.dataset_id)).toEqual([D]);
    // Back, holding its copy: not wanted (one replica is enough), so released, never destroyed.
    await h.request('POST', '/v1/drover/agents/report', report(2, { datasets: [observedDataset(D, { writable: false })] }));
    expect(h.control.desired.datasets[0]!.replicas).toEqual([nodeId(3)]);
    expect(view(2).datasets).toEqual([expect.objectContaining({ dataset_id: D, deleted: false })]);
  });
});

describe('a deploy', () => {
  it("copies a service's x-drover.replication onto its volume's dataset, and placing replicas never moves it", async () => {
    await cluster();
    const compose = { file: 'compose.yml', text: 'services:\n  db:\n    image: redis:7\n    volumes: ["data:/data"]\n    x-drover:\n      replication: { replicas: 1, interval: 2s }\nvolumes:\n  data: {}\n' };
    const topology = { file: 'topology.yml', text: 'version: 1\nnodes:\n  127.0.0.11: [db]\n' };
    const answer = await h.request('POST', '/v1/drover/deploy', { project: 'demo', compose, topology });
    expect(answer.statusCode).toBe(200);
    const data = h.control.desired.datasets.find((d) => d.metadata.name === 'demo_data')!;
    expect(data).toMatchObject({ primary: nodeId(1), replication: { replicas: 1, interval_seconds: 2 }, replicas: [nodeId(2)] });
    expect(h.control.desired.migrations).toEqual([]);
  });
});
