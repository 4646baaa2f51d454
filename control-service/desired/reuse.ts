/**
 * Structural sharing: a document built from scratch (a deploy plan rebuilds every entry of
 * its project) gets back the previous document's entry wherever the content is the same.
 * Entry identity is what the agent views, the JSON caches and the validation memo key on,
 * so an unchanged entry must stay the same object; and a document equal to the previous one
 * is the previous one (no new version, no push).
 */
import type { Desired } from '#common/model.ts';
import { entryJson } from '../store/encode.ts';
import { indexOf } from './desired-index.ts';
import { replacedPositions } from './list-diff.ts';

type Key = keyof Desired;

export function reuseUnchanged(before: Desired, after: Desired): Desired {
  if (before === after) return before;
  const index = indexOf(before);
  const maps: { [K in Key]: ReadonlyMap<string, Desired[K][number]> } = {
    nodes: index.nodes,
    datasets: index.datasets,
    applications: index.applications,
    leases: index.leases,
    migrations: index.migrations,
  };
  const keyOf: { [K in Key]: (e: Desired[K][number]) => string } = {
    nodes: (e) => e.uuid,
    datasets: (e) => e.dataset_id,
    applications: (e) => e.name,
    leases: (e) => e.dataset_id,
    migrations: (e) => e.id,
  };
  const out: Record<string, readonly object[]> = {};
  let same = true;
  for (const key of Object.keys(keyOf) as Key[]) {
    const list = after[key] as readonly object[];
    const previous = before[key] as readonly object[];
    if (list === previous) {
      out[key] = list;
      continue;
    }
    const map = maps[key] as ReadonlyMap<string, object>;
    const key_ = keyOf[key] as (e: object) => string;
    const keep = (entry: object) => {
      const old = map.get(key_(entry));
      return old !== undefined && (old === entry || entryJson(old) === entryJson(entry)) ? old : entry;
    };
    let identical = list.length === previous.length;
    let next: object[];
    const positions = replacedPositions(previous, list);
    if (positions !== null) {
      // A few entries replaced: only those can be given back their old object.
      next = list.slice();
      for (const i of positions) {
        next[i] = keep(list[i]!);
        if (next[i] !== previous[i]) identical = false;
      }
    } else {
      next = list.map((entry, i) => {
        const kept = keep(entry);
        if (kept !== previous[i]) identical = false;
        return kept;
      });
    }
    out[key] = identical ? previous : Object.freeze(next);
    if (!identical) same = false;
  }
  return same ? before : (out as unknown as Desired);
}
