import { describe, expect, it } from 'vitest';
import { replicaList } from './format.ts';

describe('replicaList', () => {
  it('shows each replica with its lag, seeding, or a state that needs the operator marked with "!"', () => {
    const names: Record<string, string> = { a: 'n2', b: 'n3', c: 'n4' };
    expect(replicaList([{ node: 'a', lag_seconds: 3.4, state: 'ok' }, { node: 'b', lag_seconds: 4, state: 'ok' }], (n) => names[n]!)).toBe('n2 3s, n3 4s');
    expect(replicaList([{ node: 'a', lag_seconds: null, state: 'seeding' }, { node: 'b', lag_seconds: 9, state: 'diverged' }, { node: 'c', lag_seconds: 1, state: 'paused' }], (n) => names[n]!)).toBe('n2 seeding, n3 diverged!, n4 paused');
    expect(replicaList([], (n) => n)).toBe('');
  });
});
