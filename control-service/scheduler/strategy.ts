/**
 * Choosing one node among those that fit: spread (fewest applications; the default),
 * binpack (most applications) or random (seeded, so a test can repeat it). Ties go to the
 * lowest uuid, so the choice is stable.
 */
import type { Application, Node } from '#common/model.ts';

/** `fits` is sorted by uuid. Null when it is empty. */
export function chooseNode(app: Application, fits: readonly Node[], count: ReadonlyMap<string, number>, seed: number): Node | null {
  if (fits.length === 0) return null;
  const strategy = app.placement?.strategy ?? 'spread';
  if (strategy === 'random') return fits[Math.floor(random(seed, app.name) * fits.length)]!;
  let best = fits[0]!;
  for (const node of fits) {
    const n = count.get(node.uuid) ?? 0;
    const b = count.get(best.uuid) ?? 0;
    if (strategy === 'spread' ? n < b : n > b) best = node;
  }
  return best;
}

/** A number in [0, 1) from the seed and the application's name (FNV-1a, then mulberry32). */
function random(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  let t = (h + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
