import { describe, expect, it } from 'vitest';
import { keptByGrid, parseRetentionGrid, type RetentionGrid } from './retention-grid.ts';

function grid(text: string): RetentionGrid {
  const parsed = parseRetentionGrid(text);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return parsed.grid;
}
const S = 1_000;
const M = 60 * S;
const H = 60 * M;

describe('parseRetentionGrid', () => {
  it("reads zrepl's notation and normalizes it", () => {
    const g = grid(' 1x1m(keep=all)|24x1h |7x1d ');
    expect(g.text).toBe('1x1m(keep=all) | 24x1h | 7x1d');
    expect(g.intervals).toHaveLength(32);
    expect(g.intervals[0]).toEqual({ lengthMs: M, keep: null });
    expect(g.intervals[1]).toEqual({ lengthMs: H, keep: 1 });
    expect(g.intervals[31]).toEqual({ lengthMs: 24 * H, keep: 1 });
  });

  it('reports every bad term at once, naming each', () => {
    const parsed = parseRetentionGrid('24x1h | 3y | 0x1m | 2x1h(keep=0)');
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toHaveLength(3);
    expect(parsed.errors[0]).toContain('"3y"');
    expect(parsed.errors[1]).toContain('"0x1m"');
    expect(parsed.errors[2]).toContain('"2x1h(keep=0)"');
  });

  it('refuses an empty grid and one too large to evaluate', () => {
    expect(parseRetentionGrid('').ok).toBe(false);
    expect(parseRetentionGrid('9999x1s | 9999x1s').ok).toBe(false);
  });
});

describe('keptByGrid', () => {
  it('keeps everything in a keep=all interval and the oldest of each later interval', () => {
    const now = 10 * H;
    const snaps = [
      { name: 'a', createdAt: now },
      { name: 'b', createdAt: now - 30 * S },
      { name: 'c', createdAt: now - 90 * S }, // second interval (1m..61m): oldest of c, d
      { name: 'd', createdAt: now - 200 * S },
      { name: 'e', createdAt: now - 5 * H }, // beyond 1m + 2h: dropped
    ];
    expect([...keptByGrid(grid('1x1m(keep=all) | 2x1h'), snaps)].sort()).toEqual(['a', 'b', 'd']);
  });

  it('measures ages from the newest snapshot, so a replica that stopped receiving keeps its copies', () => {
    const snaps = [
      { name: 'x', createdAt: 1_000 * H },
      { name: 'y', createdAt: 1_000 * H - 10 * S },
    ];
    expect([...keptByGrid(grid('1x1m(keep=all)'), snaps)].sort()).toEqual(['x', 'y']);
    expect(keptByGrid(grid('1x1m(keep=all)'), snaps, 2_000 * H).size).toBe(0);
  });

  it('keeps one snapshot per interval, the oldest in it, and none past the end of the grid', () => {
    const snaps = [0, 20, 40, 60, 80, 100, 120, 140].map((t) => ({ name: `s${t}`, createdAt: t * S }));
    // Ages at 150 s: s140 10 s … s0 150 s; intervals [0,60) [60,120) [120,180).
    expect([...keptByGrid(grid('3x1m'), snaps, 150 * S)].sort()).toEqual(['s0', 's100', 's40']);
    expect([...keptByGrid(grid('2x1m'), snaps, 150 * S)].sort()).toEqual(['s100', 's40']);
  });
});
