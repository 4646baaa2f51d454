/**
 * What restoring a backup does to the desired configuration (docs/DESIGN.md §29). Pure.
 *
 * The backup's document replaces the current one whole, with two exceptions made for the
 * data's sake (data is never moved back or destroyed by a restore the operator did not
 * spell out):
 * - moves unfinished in the backup are left out: their applications stay where the backup
 *   has them (the source before handoff, the target after), and no agent resumes a move
 *   whose steps the control service no longer knows;
 * - a conflict with the current configuration refuses the restore, naming the entry: a
 *   dataset live in both whose primary differs (restoring would hand its data back to a
 *   node holding an older copy), or one live now that the backup marks deleted (restoring
 *   would destroy it). A restore into an empty store (the usual case: the store was lost)
 *   has no conflicts.
 */
import type { Desired } from '#common/model.ts';
import { isTerminal } from '#common/migration-protocol.ts';

export interface RestoreProblem {
  /** Where, from the request body: `backup.desired.datasets.3.primary`. */
  path: string;
  message: string;
}

export interface RestorePlan {
  desired: Desired;
  /** Ids of the unfinished moves left out. */
  dropped: string[];
  /** Entries that would move back or destroy data; non-empty: refuse. */
  conflicts: RestoreProblem[];
}

export function planRestore(current: Desired, backup: Desired): RestorePlan {
  const live = new Map(current.datasets.filter((d) => !d.deleted).map((d) => [d.dataset_id, d]));
  const conflicts: RestoreProblem[] = [];
  backup.datasets.forEach((d, i) => {
    const now = live.get(d.dataset_id);
    if (now === undefined) return;
    if (d.deleted) {
      conflicts.push({ path: `backup.desired.datasets.${i}.deleted`, message: `dataset ${d.dataset_id} is live now and deleted in the backup: restoring would destroy its data (delete it with drover first, or drop the entry from the file)` });
    } else if (d.primary !== now.primary) {
      conflicts.push({ path: `backup.desired.datasets.${i}.primary`, message: `dataset ${d.dataset_id} is primary on ${now.primary} now and on ${d.primary} in the backup: restoring would hand its data back to an older copy (move it first, or edit the file)` });
    }
  });
  const kept = backup.migrations.filter((m) => isTerminal(m.phase));
  const dropped = backup.migrations.filter((m) => !isTerminal(m.phase)).map((m) => m.id);
  return { desired: { ...backup, migrations: kept }, dropped, conflicts };
}

/** Content ids the backup's applications name (files and secrets), each with where it is named. */
export function referencedContents(backup: Desired): { kind: 'file' | 'secret'; id: string; path: string }[] {
  const out: { kind: 'file' | 'secret'; id: string; path: string }[] = [];
  backup.applications.forEach((app, i) => {
    app.files?.forEach((f, j) => {
      const kind = f.kind === 'secret' ? 'secret' : 'file';
      if (f.blob !== undefined) out.push({ kind, id: f.blob, path: `backup.desired.applications.${i}.files.${j}.blob` });
      for (const [name, id] of Object.entries(f.tree ?? {})) out.push({ kind, id, path: `backup.desired.applications.${i}.files.${j}.tree.${name}` });
    });
    for (const [name, id] of Object.entries(app.secret_environment ?? {})) out.push({ kind: 'secret', id, path: `backup.desired.applications.${i}.secret_environment.${name}` });
  });
  return out;
}
