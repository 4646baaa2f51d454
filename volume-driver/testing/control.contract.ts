/**
 * One contract for every ControlPlane (docs/DESIGN.md §14): the in-memory fake
 * (volume-driver/fake-control.test.ts) and the HTTP client against the real control service
 * (test/volume-driver/control-http.test.ts) must both pass it, so the fake cannot drift from the real thing.
 */
import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { findByName, type ControlPlane } from '../control.ts';

export interface ContractWorld {
  control: ControlPlane;
  /** Two node uuids the control service accepts as primaries. */
  nodeA: string;
  nodeB: string;
}

export function controlPlaneContract(label: string, world: () => ContractWorld): void {
  describe(`ControlPlane contract: ${label}`, () => {
    it('creates a dataset named by the volume, with its size and primary', async () => {
      const { control, nodeA } = world();
      const { dataset, created } = await control.createDataset({ name: 'c-one', primary: nodeA, maximumSize: 128 * 1024 ** 2, metadata: { created_at: '2024-01-02T03:04:05Z' } });
      expect(created).toBe(true);
      expect(dataset).toMatchObject({ primary: nodeA, maximum_size: 128 * 1024 ** 2, deleted: false, metadata: { name: 'c-one', created_at: '2024-01-02T03:04:05Z' } });
      expect(findByName(await control.listDatasets(), 'c-one')?.dataset_id).toBe(dataset.dataset_id);
    });

    it('returns the existing dataset when the name is taken, even when asked many times at once', async () => {
      const { control, nodeA, nodeB } = world();
      const answers = await Promise.all(
        Array.from({ length: 5 }, (_, i) => control.createDataset({ name: 'c-race', primary: i % 2 ? nodeA : nodeB, maximumSize: null })),
      );
      const live = (await control.listDatasets()).filter((d) => !d.deleted && d.metadata.name === 'c-race');
      expect(live).toHaveLength(1);
      expect(new Set(answers.map((a) => a.dataset.dataset_id))).toEqual(new Set([live[0]!.dataset_id]));
      expect(answers.filter((a) => a.created)).toHaveLength(1);
    });

    it('soft-deletes idempotently, and lets the name be used again afterwards', async () => {
      const { control, nodeA } = world();
      const first = (await control.createDataset({ name: 'c-del', primary: nodeA, maximumSize: null })).dataset;
      await control.deleteDataset(first.dataset_id);
      await control.deleteDataset(first.dataset_id);
      expect((await control.listDatasets()).find((d) => d.dataset_id === first.dataset_id)?.deleted).toBe(true);
      const second = await control.createDataset({ name: 'c-del', primary: nodeA, maximumSize: null });
      expect(second.created).toBe(true);
      expect(second.dataset.dataset_id).not.toBe(first.dataset_id);
    });

    it('treats deleting an unknown dataset as a success', async () => {
      await world().control.deleteDataset('0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c');
    });

    it('accepts a move request, and the same request again', async () => {
      const { control, nodeA, nodeB } = world();
      const { dataset } = await control.createDataset({ name: 'c-move', primary: nodeA, maximumSize: null });
      await control.moveDataset(dataset.dataset_id, nodeB);
      await control.moveDataset(dataset.dataset_id, nodeB);
      expect(Array.isArray(await control.listMigrations())).toBe(true);
    });

    it('leases to one node at a time, renews for the holder, and names the holder to others', async () => {
      const { control, nodeA, nodeB } = world();
      const { dataset } = await control.createDataset({ name: 'c-lease', primary: nodeA, maximumSize: null });
      await control.acquireLease(dataset.dataset_id, nodeA);
      await control.acquireLease(dataset.dataset_id, nodeA);
      const refused = await control.acquireLease(dataset.dataset_id, nodeB).catch((e: unknown) => e);
      expect(isDroverError(refused, 'DROVER_LEASE_HELD')).toBe(true);
      expect((refused as { detail: Record<string, unknown> }).detail.node_uuid).toBe(nodeA);
      expect((await control.listLeases()).filter((l) => l.dataset_id === dataset.dataset_id)).toEqual([
        { dataset_id: dataset.dataset_id, node_uuid: nodeA, expires: null },
      ]);
      await control.releaseLease(dataset.dataset_id);
      await control.releaseLease(dataset.dataset_id);
      await control.acquireLease(dataset.dataset_id, nodeB);
      await control.releaseLease(dataset.dataset_id);
    });

    it('leases a dataset that is not configured yet, as Flocker does', async () => {
      const { control, nodeA } = world();
      const id = '0000000f-0000-4000-8000-000000000001';
      await expect(control.acquireLease(id, nodeA)).resolves.toMatchObject({ dataset_id: id, node_uuid: nodeA });
      await control.releaseLease(id);
    });

    it('takes a lease that expires, and renews it for the holder with a fresh expiry', async () => {
      const { control, nodeA } = world();
      const { dataset } = await control.createDataset({ name: 'c-lease-ttl', primary: nodeA, maximumSize: null });
      expect((await control.acquireLease(dataset.dataset_id, nodeA, 60)).expires).toBeGreaterThan(59);
      const renewed = await control.acquireLease(dataset.dataset_id, nodeA, 60);
      expect(renewed).toMatchObject({ dataset_id: dataset.dataset_id, node_uuid: nodeA });
      const [listed] = (await control.listLeases()).filter((l) => l.dataset_id === dataset.dataset_id);
      expect(listed!.expires).toBeGreaterThan(59);
      expect(listed!.expires).toBeLessThanOrEqual(60);
      await control.releaseLease(dataset.dataset_id);
    });

    it('reports dataset state as a list with primary and path fields', async () => {
      const states = await world().control.datasetStates();
      expect(Array.isArray(states)).toBe(true);
      for (const s of states) expect(s).toEqual({ dataset_id: expect.any(String), primary: s.primary, path: s.path });
    });
  });
}
