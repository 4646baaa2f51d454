/**
 * A Compose service's `x-drover: { replication: … }` (docs/DESIGN.md §17) → its application's
 * replication policy. Pure; a bad value throws `DROVER_BAD_CONFIG` naming the file, the
 * service and the key.
 *
 * ```yaml
 * x-drover:
 *   replication:
 *     replicas: 2            # standby copies on two other nodes
 *     interval: 2s           # Compose durations: 2s, 1m30s, 500ms (default 10s, at least 1s)
 *     retention:             # zrepl's grid notation, per side
 *       primary: 1x1m(keep=all) | 24x1h
 *       replicas: 1x1m(keep=all) | 24x1h | 7x1d
 *     freeze_during_snapshot: true   # pause the containers while each snapshot runs (docs/DESIGN.md §47); default false
 * ```
 *
 * Swarm's `deploy.replicas` is not this: there it counts running instances, and drover runs
 * one per service.
 */
import { z } from 'zod';
import { parseDuration } from '#common/units.ts';
import { ReplicationPolicy, RetentionGridText } from '#common/model.ts';
import type { Scope } from './scope.ts';

const ComposeReplication = z
  .object({
    replicas: ReplicationPolicy.shape.replicas,
    interval: z.union([z.string(), z.number()]).optional(),
    retention: z.object({ primary: RetentionGridText.optional(), replicas: RetentionGridText.optional() }).strict().optional(),
    freeze_during_snapshot: z.boolean().optional(),
  })
  .strict();

const REASONS = {
  interval_seconds: 'write "interval" as Compose writes durations ("2s", "1m30s")',
};

/** Reads `x-drover.replication` (found at `key`) into a policy with its defaults. */
export function readComposeReplication(scope: Scope, key: readonly PropertyKey[], value: unknown): ReplicationPolicy {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) scope.failKey(key, 'must be a mapping: { replicas: N, interval: 10s, retention: { primary: …, replicas: … } }');
  const spec = scope.shape(key, ComposeReplication, value, REASONS);
  let interval: number | undefined;
  if (spec.interval !== undefined) {
    const seconds = parseDuration(spec.interval);
    if (seconds === null) scope.failKey([...key, 'interval'], `"${spec.interval}" is not a duration ("10s", "1m30s")`);
    if (seconds < 1 || seconds > 86_400) scope.failKey([...key, 'interval'], `"${spec.interval}" must be between 1s and 24h`);
    interval = seconds;
  }
  return ReplicationPolicy.parse({
    replicas: spec.replicas,
    ...(interval === undefined ? {} : { interval_seconds: interval }),
    ...(spec.retention === undefined ? {} : { retention: spec.retention }),
    ...(spec.freeze_during_snapshot === true ? { freeze_during_snapshot: true } : {}),
  });
}
