import { describe, expect, it } from 'vitest';
import type { Desired } from '#common/model.ts';
import { moveApplication } from '../desired/applications.ts';
import { deleteDataset } from '../desired/datasets.ts';
import { validateDesired } from '../store/validate.ts';
import { affectedNodes } from './affected-nodes.ts';

const n = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const d = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const base: Desired = validateDesired({
  nodes: [1, 2, 3, 4].map((i) => ({ uuid: n(i), host: `127.0.0.${10 + i}` })),
  datasets: [
    { dataset_id: d(1), primary: n(1) },
    { dataset_id: d(2), primary: n(3) },
  ],
  applications: [{ name: 'web', image: 'x', node_uuid: n(1), volumes: [{ dataset_id: d(1), mountpoint: '/d' }] }],
});
const nobody = () => [];

describe('affectedNodes', () => {
  it('touches only the two nodes of a new migration', () => {
    const moved = validateDesired(moveApplication(base, 'web', n(2), { now: 1, version: 5 }).desired);
    expect(affectedNodes(base, moved, nobody)).toEqual(new Set([n(1), n(2)]));
  });

  it('touches every node when the node list changes', () => {
    const more = validateDesired({ ...base, nodes: [...base.nodes, { uuid: n(5), host: '127.0.0.15' }] });
    expect(affectedNodes(base, more, nobody)).toBe('all');
  });

  it('touches the primary of a deleted dataset and the nodes that hold a copy of it', () => {
    const deleted = validateDesired(deleteDataset(base, d(2), 1).desired);
    expect(affectedNodes(base, deleted, (id) => (id === d(2) ? [n(4)] : []))).toEqual(new Set([n(3), n(4)]));
  });

  it('touches nothing when nothing changed', () => {
    expect(affectedNodes(base, base, nobody)).toEqual(new Set());
  });
});
