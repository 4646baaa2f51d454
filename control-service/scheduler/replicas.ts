/**
 * Where the standby copies of replicated datasets go (docs/DESIGN.md §17). Pure: no clock, no
 * I/O; time and what the agents reported are inputs, so it is tested by equality.
 *
 * For a dataset whose policy asks for N > 0 replicas:
 * - a candidate is a node other than the primary that satisfies the constraints of the
 *   application that mounts the dataset (the placement rules, so a replica can become
 *   primary); only up nodes are chosen anew;
 * - a chosen replica stays while its node is up, or silent for at most `replaceAfterMs`
 *   (unknown is not gone); one silent for longer is replaced when another node fits, and is
 *   otherwise kept (nothing better exists). Once replaced it is no longer in `replicas`; when
 *   it comes back it is chosen again only if a replica is still wanted, and it is preferred
 *   then, because it holds a copy;
 * - among candidates: those that hold a copy already (the next send is incremental), then
 *   the least used `zone` label (the primary's zone counts as used), then the fewest
 *   replicas held across all datasets, then the uuid;
 * - the primary is never a replica: after a handoff the new primary leaves `replicas` and
 *   the old one, which holds the data, is the preferred candidate;
 * - a cordoned node is never chosen anew, and keeps the replicas it has; a draining one
 *   loses them (replaced like lapsed ones, and kept only while nothing else fits);
 * - while the dataset is moving its replicas are left as they are;
 * - a policy of null or 0 replicas, or a deleted dataset: no replicas.
 *
 * Dropping a node from `replicas` destroys nothing: its agent keeps the copy read-only
 * (it stays in its view while it reports the copy present), and pruning released copies is
 * the agent's job.
 */
import type { Dataset, Desired, Node } from '#common/model.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import { indexOf } from '../desired/desired-index.ts';
import { firstUnmet } from './schedule.ts';

/** The node label replicas are spread across, when nodes carry it. */
export const ZONE_LABEL = 'zone';

export interface ReplicaInput {
  desired: Desired;
  /** Nodes reporting now. */
  up: ReadonlySet<string>;
  /** How long a node that is not up has been silent, ms. */
  silentForMs: (node: string) => number;
  /** A chosen replica silent for longer than this is replaced. */
  replaceAfterMs: number;
  /** The nodes that reported a copy of the dataset. */
  holding: (datasetId: string) => readonly string[];
}

export interface ReplicaChoice {
  /** The replicas the dataset should have now (in order: kept ones first, then new ones). */
  replicas: string[];
  /** Why fewer than the policy's N are placed, or a replica is kept though lapsed; null when all is well. */
  problem: string | null;
}

/**
 * The replicas of every replicated dataset (and of every dataset that has replicas but
 * should not), keyed by dataset id. Datasets not in the answer keep what they have.
 */
export function chooseReplicas(input: ReplicaInput): Map<string, ReplicaChoice> {
  const { desired } = input;
  const index = indexOf(desired);
  const out = new Map<string, ReplicaChoice>();
  const nodes = [...desired.nodes].sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
  /** How many replicas each node holds, as chosen so far (the spread tie-break). */
  const load = new Map<string, number>();
  for (const d of index.replicatedDatasets) for (const r of d.replicas) load.set(r, (load.get(r) ?? 0) + 1);

  for (const dataset of index.replicatedDatasets) {
    const wanted = dataset.deleted || dataset.primary === UNPLACED_PRIMARY ? 0 : (dataset.replication?.replicas ?? 0);
    if (wanted === 0) {
      if (dataset.replicas.length > 0) out.set(dataset.dataset_id, { replicas: [], problem: null });
      continue;
    }
    if (index.activeMigrations.byDataset.has(dataset.dataset_id)) continue;
    const app = index.applicationByDataset.get(dataset.dataset_id);
    const why = new Map<string, number>();
    const fits = (node: Node): boolean => {
      if (node.uuid === dataset.primary) return false;
      const unmet = app ? firstUnmet(app, node) : null;
      if (unmet !== null) why.set(unmet, (why.get(unmet) ?? 0) + 1);
      return unmet === null;
    };

    const kept: string[] = [];
    const lapsed: string[] = [];
    for (const r of dataset.replicas) {
      const node = index.nodes.get(r);
      if (!node || kept.includes(r) || !fits(node)) continue;
      if (node.cordon?.drain !== true && (input.up.has(r) || input.silentForMs(r) <= input.replaceAfterMs)) kept.push(r);
      else lapsed.push(r);
    }
    // A smaller policy: keep the up ones first.
    kept.sort((a, b) => Number(input.up.has(b)) - Number(input.up.has(a)));
    kept.splice(wanted);

    const holders = new Set(input.holding(dataset.dataset_id));
    const zoneOf = (uuid: string) => index.nodes.get(uuid)?.labels[ZONE_LABEL];
    const zoneUse = new Map<string | undefined, number>();
    for (const uuid of [dataset.primary, ...kept]) {
      const zone = zoneOf(uuid);
      if (zone !== undefined) zoneUse.set(zone, (zoneUse.get(zone) ?? 0) + 1);
    }
    const chosen = [...kept];
    const candidates = nodes.filter((n) => input.up.has(n.uuid) && n.cordon === undefined && !kept.includes(n.uuid) && !lapsed.includes(n.uuid) && fits(n));
    while (chosen.length < wanted && candidates.length > 0) {
      candidates.sort((a, b) => compare(a, b, holders, zoneUse, load));
      const next = candidates.shift()!;
      chosen.push(next.uuid);
      load.set(next.uuid, (load.get(next.uuid) ?? 0) + 1);
      const zone = next.labels[ZONE_LABEL];
      if (zone !== undefined) zoneUse.set(zone, (zoneUse.get(zone) ?? 0) + 1);
    }
    // A lapsed replica nobody replaced is still the best there is: keep it.
    const keptLapsed: string[] = [];
    for (const r of lapsed) {
      if (chosen.length >= wanted) break;
      chosen.push(r);
      keptLapsed.push(r);
    }
    for (const r of dataset.replicas) if (!chosen.includes(r)) load.set(r, Math.max(0, (load.get(r) ?? 1) - 1));

    const upOthers = nodes.filter((n) => n.uuid !== dataset.primary && input.up.has(n.uuid)).length;
    const problem = explain(wanted, chosen.length, keptLapsed, input, upOthers, why);
    out.set(dataset.dataset_id, { replicas: chosen, problem });
  }
  return out;
}

function compare(a: Node, b: Node, holders: ReadonlySet<string>, zoneUse: ReadonlyMap<string | undefined, number>, load: ReadonlyMap<string, number>): number {
  const hold = Number(holders.has(b.uuid)) - Number(holders.has(a.uuid));
  if (hold !== 0) return hold;
  const za = a.labels[ZONE_LABEL];
  const zb = b.labels[ZONE_LABEL];
  // A node without the label counts as its own zone: unused.
  const zone = (za === undefined ? 0 : (zoneUse.get(za) ?? 0)) - (zb === undefined ? 0 : (zoneUse.get(zb) ?? 0));
  if (zone !== 0) return zone;
  const held = (load.get(a.uuid) ?? 0) - (load.get(b.uuid) ?? 0);
  if (held !== 0) return held;
  return a.uuid < b.uuid ? -1 : 1;
}

function explain(wanted: number, placed: number, keptLapsed: string[], input: ReplicaInput, upOthers: number, why: Map<string, number>): string | null {
  const parts: string[] = [];
  if (placed < wanted) {
    const reasons = [...why].map(([reason, n]) => `${reason} (${n} node${n === 1 ? '' : 's'})`);
    const nodes = `${upOthers} node${upOthers === 1 ? '' : 's'} up besides the primary`;
    parts.push(`${placed} of ${wanted} replicas placed: ${reasons.length > 0 ? `${nodes}; ${reasons.join('; ')}` : nodes}`);
  }
  for (const r of keptLapsed) parts.push(`replica node ${r} silent for more than ${Math.round(input.replaceAfterMs / 1000)}s and no other node fits`);
  return parts.length === 0 ? null : parts.join('; ');
}

/** True when `choice` differs from what the dataset has. */
export function replicasDiffer(dataset: Dataset, choice: ReplicaChoice): boolean {
  return choice.replicas.length !== dataset.replicas.length || choice.replicas.some((r, i) => r !== dataset.replicas[i]);
}
