/**
 * A backup of the desired configuration (docs/DESIGN.md §29): what `drover control backup`
 * writes and `drover control restore` sends back. It is taken and restored through the API
 * (`GET /v1/drover/backup`, `POST /v1/drover/restore`, users only), so it works the same
 * whatever store the control service runs on, and carries the cluster it came from — the
 * SHA-256 fingerprint of the cluster CA's certificate — so a restore into another cluster
 * is refused unless forced.
 */
import { z } from 'zod';
import { Desired, Uuid } from './model.ts';

export const BACKUP_FORMAT = 'drover-backup';

/** `sha256:<64 hex>` of the cluster CA certificate; null for a control service serving plain loopback HTTP (no CA). */
export const ClusterId = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256: and 64 hex digits (the cluster CA fingerprint)').nullable();

export const Backup = z
  .object({
    format: z.literal(BACKUP_FORMAT, { error: `must be "${BACKUP_FORMAT}" (a file written by drover control backup)` }),
    format_version: z.literal(1, { error: 'must be 1 (this drover reads backups of format 1)' }),
    cluster: ClusterId,
    /** When it was taken (ISO 8601, the control service's clock). */
    taken_at: z.iso.datetime(),
    /** The store's version and tag when it was taken. */
    version: z.number().int().min(0),
    tag: z.string(),
    desired: Desired,
  })
  .strict();
export type Backup = z.infer<typeof Backup>;

export const RestoreBody = z
  .object({
    backup: Backup,
    /** Restore a backup of another cluster (its CA differs) all the same. */
    force: z.boolean().default(false),
  })
  .strict();
export type RestoreBody = z.input<typeof RestoreBody>;

export const RestoreAnswer = z
  .object({
    /** The store's version and tag after the restore. */
    version: z.number().int(),
    tag: z.string(),
    /** How many entries the configuration now has, per collection. */
    restored: z.object({ nodes: z.number().int(), datasets: z.number().int(), applications: z.number().int(), leases: z.number().int(), migrations: z.number().int() }).strict(),
    /** Moves that were unfinished in the backup: left out (their applications stay where the backup has them). */
    dropped_migrations: z.array(Uuid),
    /** True when the backup came from another cluster and `force` let it in. */
    forced: z.boolean(),
  })
  .strict();
export type RestoreAnswer = z.infer<typeof RestoreAnswer>;
