import { afterEach, describe, expect, it } from 'vitest';
import type { Backup } from '#common/backup.ts';
import { datasetId, harness, nodeId, report, type Harness } from '../testing/harness.ts';

// GET /v1/drover/backup and POST /v1/drover/restore through inject() (docs/DESIGN.md §29).
const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
});
async function service(): Promise<Harness> {
  const h = await harness();
  open.push(h);
  return h;
}

const [N1, N2] = [nodeId(1), nodeId(2)];
const [D1, D2] = [datasetId(1), datasetId(2)];

/** A cluster with two nodes, two datasets, an application on each, a lease — and its backup. */
async function populated(): Promise<{ h: Harness; backup: Backup }> {
  const h = await service();
  for (const i of [1, 2]) expect((await h.request('POST', '/v1/drover/agents/report', report(i))).statusCode).toBe(200);
  await h.request('POST', '/v1/configuration/datasets', { primary: N1, dataset_id: D1, maximum_size: 67108864 });
  await h.request('POST', '/v1/configuration/datasets', { primary: N2, dataset_id: D2 });
  await h.request('POST', '/v1/configuration/containers', { name: 'db', image: 'registry.example/db', node_uuid: N1, volumes: [{ dataset_id: D1, mountpoint: '/data' }] });
  await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'registry.example/web', node_uuid: N2, ports: [{ internal: 80, external: 8080 }] });
  await h.request('POST', '/v1/configuration/leases', { dataset_id: D2, node_uuid: N2, expires: null });
  const answer = await h.request('GET', '/v1/drover/backup');
  expect(answer.statusCode).toBe(200);
  return { h, backup: answer.json() as Backup };
}

describe('backup and restore of the desired configuration', () => {
  it('restores every entry of a backup into an empty control service, in one change, with the same tag', async () => {
    const { h, backup } = await populated();
    expect(backup).toMatchObject({ format: 'drover-backup', format_version: 1, cluster: null, version: h.control.snapshot.version, tag: h.control.snapshot.tag });
    const empty = await service();
    const before = empty.control.snapshot.version;
    const answer = await empty.request('POST', '/v1/drover/restore', { backup });
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({ restored: { nodes: 2, datasets: 2, applications: 2, leases: 1, migrations: 0 }, dropped_migrations: [], forced: false });
    expect(empty.control.snapshot.version).toBe(before + 1);
    expect(empty.control.desired).toEqual(h.control.desired);
    expect(empty.control.snapshot.tag).toBe(backup.tag);
  });

  it("refuses a backup of another cluster unless forced, changing nothing", async () => {
    const { backup } = await populated();
    const other = { ...backup, cluster: `sha256:${'ab'.repeat(32)}` };
    const target = await service();
    const refused = await target.request('POST', '/v1/drover/restore', { backup: other });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'DROVER_BACKUP_OTHER_CLUSTER', description: expect.stringContaining('force') });
    expect(target.control.desired.applications).toEqual([]);
    const forced = await target.request('POST', '/v1/drover/restore', { backup: other, force: true });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toMatchObject({ forced: true });
    expect(target.control.desired.applications.map((a) => a.name).sort()).toEqual(['db', 'web']);
  });

  it('names every bad field of a damaged file at once, and changes nothing', async () => {
    const { backup } = await populated();
    const target = await service();
    const damaged = structuredClone(backup) as unknown as { desired: { applications: Record<string, unknown>[]; datasets: Record<string, unknown>[] }; taken_at: string };
    delete damaged.desired.applications[0]!.image;
    damaged.desired.applications[1]!.ports = [{ internal: 80, external: 70000 }];
    damaged.desired.datasets[0]!.frobnicate = true;
    damaged.taken_at = 'yesterday';
    const answer = await target.request('POST', '/v1/drover/restore', { backup: damaged });
    expect(answer.statusCode).toBe(400);
    const errors = (answer.json() as { errors: string[] }).errors;
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^backup\.desired\.applications\.0\.image: /),
        expect.stringMatching(/^backup\.desired\.applications\.1\.ports\.0\.external: /),
        'backup.desired.datasets.0.frobnicate: unknown field',
        expect.stringMatching(/^backup\.taken_at: /),
      ]),
    );
    expect(target.control.snapshot.version).toBe(0);
    expect(target.control.desired.applications).toEqual([]);
  });

  it("names the rule a backup's configuration breaks as a path of the file", async () => {
    const { backup } = await populated();
    const target = await service();
    // db mounts D1, which the file no longer has.
    const broken = { ...backup, desired: { ...backup.desired, datasets: backup.desired.datasets.filter((d) => d.dataset_id !== D1) } };
    const answer = await target.request('POST', '/v1/drover/restore', { backup: broken });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'DROVER_BACKUP_INVALID' });
    expect((answer.json() as { errors: string[] }).errors.some((e) => e.startsWith('backup.desired.applications.'))).toBe(true);
    expect(target.control.desired.datasets).toEqual([]);
  });

  it('refuses to hand a dataset back to another primary or to delete a live one, naming each', async () => {
    const { backup } = await populated();
    // A cluster where, since the backup, D1 moved to node 2 (its application with it); D2 is live.
    const h = await service();
    const moved = structuredClone(backup);
    moved.desired.datasets = moved.desired.datasets.map((d) => (d.dataset_id === D1 ? { ...d, primary: N2 } : d));
    moved.desired.applications = moved.desired.applications.map((a) => (a.name === 'db' ? { ...a, node_uuid: N2 } : a));
    expect((await h.request('POST', '/v1/drover/restore', { backup: moved })).statusCode).toBe(200);
    const version = h.control.snapshot.version;
    const stale = structuredClone(backup);
    stale.desired.datasets = stale.desired.datasets.map((d) => (d.dataset_id === D2 ? { ...d, deleted: true } : d));
    stale.desired.leases = [];
    const answer = await h.request('POST', '/v1/drover/restore', { backup: stale });
    expect(answer.statusCode).toBe(409);
    expect(answer.json()).toMatchObject({ code: 'DROVER_BACKUP_CONFLICT' });
    const errors = (answer.json() as { errors: string[] }).errors;
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^backup\.desired\.datasets\.0\.primary: dataset .* is primary on .* now/);
    expect(errors[1]).toMatch(/^backup\.desired\.datasets\.1\.deleted: .*would destroy its data/);
    expect(h.control.snapshot.version).toBe(version);
  });

  it('leaves out the moves unfinished in the backup, and says which', async () => {
    const h = await service();
    for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
    await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'registry.example/web', node_uuid: N1 });
    const move = await h.request('POST', '/v1/configuration/containers/web', { node_uuid: N2 });
    const id = (move.json() as { migration: { id: string } }).migration.id;
    const backup = (await h.request('GET', '/v1/drover/backup')).json() as Backup;
    expect(backup.desired.migrations.map((m) => m.id)).toEqual([id]);
    const target = await service();
    const answer = await target.request('POST', '/v1/drover/restore', { backup });
    expect(answer.json()).toMatchObject({ dropped_migrations: [id], restored: { migrations: 0 } });
    expect(target.control.desired.applications[0]).toMatchObject({ name: 'web', node_uuid: N1 });
  });

  it("refuses a backup naming a file content this control service does not hold", async () => {
    const { backup } = await populated();
    const withFile = structuredClone(backup);
    withFile.desired.applications[1] = { ...withFile.desired.applications[1]!, files: [{ target: '/etc/web.conf', kind: 'config', blob: 'c'.repeat(64) }] };
    const target = await service();
    const answer = await target.request('POST', '/v1/drover/restore', { backup: withFile });
    expect(answer.statusCode).toBe(400);
    expect((answer.json() as { errors: string[] }).errors).toEqual([`backup.desired.applications.1.files.0.blob: file cccccccccccc…: not held by this control service`]);
    expect(target.control.desired.applications).toEqual([]);
  });
});
