/**
 * `GET /v1/drover/backup` and `POST /v1/drover/restore` (docs/DESIGN.md §29): the desired
 * configuration out and back in through the API, so both work on any store. A restore is
 * one change of the store — all of it or nothing — after every check has passed: the
 * backup validates (the router, naming each bad path), it is of this cluster (or forced),
 * every file and secret its applications name is in this control service's vault, it
 * moves no data back and deletes none that is live (desired/restore.ts), and the result
 * keeps every cross-entry rule (the usual pipeline of `Control.change`).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { BACKUP_FORMAT, type Backup, type RestoreAnswer } from '#common/backup.ts';
import { DroverError, isDroverError } from '#common/errors.ts';
import type { Control } from '../control.ts';
import { planRestore, referencedContents, type RestoreProblem } from '../desired/restore.ts';
import type { Router } from '../http/router.ts';

/** A backup at 10k entries is several MiB; the rest of the API keeps the default limit. */
export const RESTORE_BODY_LIMIT = 64 * 1024 * 1024;

/** The cluster's identity: `sha256:` and the fingerprint of the (first) CA certificate; null without one. */
export function clusterIdOf(caPem: string | Buffer | undefined): string | null {
  if (caPem === undefined) return null;
  try {
    return `sha256:${createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex')}`;
  } catch {
    return null;
  }
}

export function backupRoutes(router: Router, control: Control, cluster: string | null): void {
  router.handle('backup', async () => {
    const snap = control.snapshot;
    const backup: Backup = { format: BACKUP_FORMAT, format_version: 1, cluster, taken_at: new Date(control.clock()).toISOString(), version: snap.version, tag: snap.tag, desired: snap.desired };
    control.log.info({ version: snap.version, applications: snap.desired.applications.length, datasets: snap.desired.datasets.length }, 'backup taken');
    return backup;
  });

  router.handle(
    'restore',
    async ({ body }) => {
      const { backup, force } = body;
      const other = backup.cluster !== cluster;
      if (other && !force) {
        throw new DroverError('DROVER_BACKUP_OTHER_CLUSTER', `the backup is of cluster ${backup.cluster ?? '(none: a plain-HTTP control service)'}, this is ${cluster ?? '(none: a plain-HTTP control service)'}; nothing was changed (force restores it all the same)`, {
          detail: { backup_cluster: backup.cluster, cluster },
        });
      }
      const missing = await missingContents(control, backup);
      if (missing.length > 0) {
        throw new DroverError('DROVER_BACKUP_INVALID', `the backup names ${missing.length} file or secret content(s) this control service does not hold (a backup carries none; deploy the project again here first); nothing was changed`, { detail: { issues: missing } });
      }
      let dropped: string[] = [];
      let snapshot;
      try {
        snapshot = await control.change((current) => {
          const plan = planRestore(current, backup.desired);
          if (plan.conflicts.length > 0) {
            throw new DroverError('DROVER_BACKUP_CONFLICT', `restoring would move back or delete data the configuration has now (${plan.conflicts.length} dataset(s)); nothing was changed`, { detail: { issues: plan.conflicts } });
          }
          dropped = plan.dropped;
          return plan.desired;
        });
      } catch (err) {
        // The cross-entry rules name paths of the document: named here as paths of the request.
        if (isDroverError(err, 'DROVER_INVALID_CONFIGURATION')) {
          const issues = ((err.detail.issues ?? []) as RestoreProblem[]).map((i) => ({ path: `backup.desired.${i.path}`, message: i.message }));
          throw new DroverError('DROVER_BACKUP_INVALID', `the backup's configuration breaks ${issues.length} rule(s); nothing was changed`, { detail: { issues }, cause: err });
        }
        throw err;
      }
      const d = snapshot.desired;
      control.log.warn({ version: snapshot.version, from: backup.cluster, forced: other, taken_at: backup.taken_at, dropped }, 'configuration restored from a backup');
      const answer: RestoreAnswer = {
        version: snapshot.version,
        tag: snapshot.tag,
        restored: { nodes: d.nodes.length, datasets: d.datasets.length, applications: d.applications.length, leases: d.leases.length, migrations: d.migrations.length },
        dropped_migrations: dropped,
        forced: other,
      };
      return answer;
    },
    { bodyLimit: RESTORE_BODY_LIMIT },
  );
}

async function missingContents(control: Control, backup: Backup): Promise<RestoreProblem[]> {
  const out: RestoreProblem[] = [];
  for (const ref of referencedContents(backup.desired)) {
    try {
      await control.vault.get(ref.kind, ref.id);
    } catch (err) {
      const why = isDroverError(err, 'DROVER_SECRET_UNREADABLE') ? 'sealed under another key here' : 'not held by this control service';
      out.push({ path: ref.path, message: `${ref.kind} ${ref.id.slice(0, 12)}…: ${why}` });
    }
  }
  return out;
}
