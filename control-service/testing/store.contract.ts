/**
 * The behaviour every ConfigStore promises, as one suite run against each store
 * (docs/DESIGN.md §14: one contract suite, the fake and the real thing).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Desired, Node } from '#common/model.ts';
import type { ConfigStore } from '../store/config-store.ts';

const nodeUuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const node = (i: number): Node => ({ uuid: nodeUuid(i), host: `127.0.0.${10 + i}`, labels: {}, transfer: {} });
const withNode = (i: number) => (d: Desired): Desired => ({ ...d, nodes: [...d.nodes, node(i)] });

export function storeContract(name: string, make: () => Promise<{ store: ConfigStore; reopen?: () => Promise<ConfigStore> }>): void {
  describe(`${name} (ConfigStore contract)`, () => {
    it('starts empty at version 0', async () => {
      const { store } = await make();
      const snap = await store.load();
      expect(snap.version).toBe(0);
      expect(snap.desired).toEqual({ nodes: [], datasets: [], applications: [], leases: [], migrations: [] });
      await store.close();
    });

    it('commits a change with a new version and tag, and applies zod defaults', async () => {
      const { store } = await make();
      const before = await store.load();
      const after = await store.update((d) => ({ ...d, datasets: [{ dataset_id: nodeUuid(9), primary: nodeUuid(1) } as never] }));
      expect(after.version).toBe(before.version + 1);
      expect(after.tag).not.toBe(before.tag);
      expect(after.desired.datasets[0]).toEqual({ dataset_id: nodeUuid(9), primary: nodeUuid(1), maximum_size: null, metadata: {}, deleted: false, replication: null, replicas: [] });
      expect(store.current()).toBe(after);
      await store.close();
    });

    it('refuses an invalid document with the zod paths and changes nothing', async () => {
      const { store } = await make();
      await store.load();
      await store.update(withNode(1));
      const before = store.current();
      const bad = (d: Desired) => ({ ...d, nodes: [...d.nodes, { uuid: 'not-a-uuid', host: '127.0.0.1', extra: 1 }] }) as unknown as Desired;
      const err = await store.update(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(z.ZodError);
      const paths = (err as z.ZodError).issues.map((i) => i.path.join('.'));
      expect(paths).toEqual(expect.arrayContaining(['nodes.1.uuid', 'nodes.1']));
      expect(store.current()).toBe(before);
      await store.close();
    });

    it('commits an update made just as the previous one resolves, after any number of turns', async () => {
      const { store } = await make();
      await store.load();
      for (let turns = 0; turns < 8; turns++) {
        await store.update(withNode(turns));
        for (let i = 0; i < turns; i++) await Promise.resolve();
        const next = await Promise.race([store.update(withNode(100 + turns)), new Promise((r) => setTimeout(() => r('stranded'), 2000))]);
        expect(next, `after ${turns} turns`).not.toBe('stranded');
      }
      await store.close();
    });

    it('treats null and the same document as no change', async () => {
      const { store } = await make();
      const before = await store.load();
      expect(await store.update(() => null)).toBe(before);
      expect(await store.update((d) => d)).toBe(before);
      await store.close();
    });

    it('applies concurrent updates one after another, each seeing the one before', async () => {
      const { store } = await make();
      await store.load();
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.update(withNode(i))));
      const snap = store.current();
      expect(snap.version).toBe(40);
      expect(snap.desired.nodes.map((n) => n.uuid).sort()).toEqual(Array.from({ length: 40 }, (_, i) => nodeUuid(i)).sort());
      await store.close();
    });

    it('rejects only the update that throws; the others in the same batch commit', async () => {
      const { store } = await make();
      await store.load();
      const results = await Promise.allSettled([
        store.update(withNode(1)),
        store.update(() => {
          throw new Error('refused');
        }),
        store.update(withNode(2)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(store.current().desired.nodes).toHaveLength(2);
      await store.close();
    });

    it('lets only the first of two conditional writes with the same tag through', async () => {
      const { store } = await make();
      const { tag } = await store.load();
      const seen: boolean[] = [];
      const conditional = (i: number) => (d: Desired, ctx: { tagMatches(t: string): boolean }) => {
        seen.push(ctx.tagMatches(tag));
        return ctx.tagMatches(tag) ? withNode(i)(d) : null;
      };
      await Promise.all([store.update(conditional(1)), store.update(conditional(2))]);
      expect(seen).toEqual([true, false]);
      expect(store.current().desired.nodes).toHaveLength(1);
      await store.close();
    });

    it('gives equal documents equal tags', async () => {
      const { store } = await make();
      const empty = await store.load();
      await store.update(withNode(1));
      const back = await store.update((d) => ({ ...d, nodes: [] }));
      expect(back.tag).toBe(empty.tag);
      await store.close();
    });

    it('hands out frozen documents', async () => {
      const { store } = await make();
      await store.load();
      const snap = await store.update(withNode(1));
      expect(() => (snap.desired.nodes as Node[]).push(node(2))).toThrow(TypeError);
      expect(() => {
        (snap.desired.nodes[0] as { host: string }).host = '127.0.0.99';
      }).toThrow(TypeError);
      await store.close();
    });

    it('gives each change its own version, also inside one batch', async () => {
      const { store } = await make();
      await store.load();
      const versions: number[] = [];
      const recording = (i: number) => (d: Desired, ctx: { version: number }) => {
        versions.push(ctx.version);
        return withNode(i)(d);
      };
      await Promise.all([store.update(recording(1)), store.update(recording(2)), store.update(recording(3))]);
      expect(versions).toEqual([1, 2, 3]);
      await store.close();
    });

    it('keeps committed changes across a reopen', async () => {
      const made = await make();
      if (!made.reopen) return;
      await made.store.load();
      await made.store.update(withNode(1));
      const saved = await made.store.update(withNode(2));
      await made.store.close();
      const again = await made.reopen();
      const loaded = await again.load();
      expect(loaded.version).toBe(saved.version);
      expect(loaded.tag).toBe(saved.tag);
      expect(loaded.desired).toEqual(saved.desired);
      await again.close();
    });
  });
}
