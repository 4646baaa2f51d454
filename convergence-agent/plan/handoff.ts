/**
 * The target's first steps at a migration's handoff, picked out of a plan. Pure.
 *
 * When the watcher brings a view in which a migration to this node reached `handoff`, the
 * loop plans that view against the *last pass's* observation and applies only what this
 * picks, before the next discovery (a discovery is 0.1–0.3 s of zfs and Docker listings on a
 * loaded node, and every ms of it is the client's pause): the migration's datasets made
 * writable and mounted, then its gated container's gate opened. Everything else waits for
 * the pass that follows, which discovers afresh.
 *
 * Safe with an older observation because what is picked is what the planner decides from
 * the *new* view — T is primary for D and A is placed here, which the control service wrote
 * in one store update — and because each step checks what it acts on: `readonly=off` and a
 * mount of a dataset already writable and mounted change nothing, and a gate opens only the
 * container that was started behind it for this migration (gate id = migration id). A
 * container started after handoff (no warm start) is left to the next pass: creating one
 * from an older listing could collide with a container that listing did not see.
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Change } from './types.ts';

/** The migrations to this node that are at `handoff` in `desired`, as `id:generation`. */
export function handoffKeys(desired: AgentDesired, nodeUuid: string): string[] {
  return desired.migrations.filter((m) => m.to === nodeUuid && m.phase === 'handoff').map((m) => `${m.id}:${m.generation}`);
}

/**
 * The changes of `planned` that ready the target of the migrations `keys` names (from
 * `handoffKeys`): a dataset of theirs made writable (and mounted) or mounted, and the gate of
 * their warm-started container; in the planner's order (the gate opens after the mounts).
 */
export function handoffChanges(desired: AgentDesired, keys: readonly string[], planned: readonly Change[]): Change[] {
  const wanted = new Set(keys);
  const migrations = desired.migrations.filter((m) => wanted.has(`${m.id}:${m.generation}`));
  const datasets = new Set(migrations.flatMap((m) => m.dataset_ids));
  const gates = new Set(migrations.map((m) => m.id));
  return planned.filter((c) => {
    if (c.kind === 'set-dataset-readonly') return !c.readonly && c.rollbackTo === undefined && datasets.has(c.datasetId);
    if (c.kind === 'mount-dataset') return datasets.has(c.datasetId);
    if (c.kind === 'open-container-gate') return gates.has(c.gateId);
    return false;
  });
}
