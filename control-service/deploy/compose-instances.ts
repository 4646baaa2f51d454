/**
 * Compose's `deploy.replicas`, `deploy.mode` and `deploy.update_config` (docs/DESIGN.md §30):
 * several instances of a service without volumes. `replicas: 1` (or none) is the classic
 * single application, which may have volumes and moves with its data. Every problem is
 * recorded against its key.
 */
import { z } from 'zod';
import { parseDuration } from '#common/units.ts';
import type { UpdateConfig } from '#common/model.ts';
import type { Scope } from './scope.ts';

export const DeployUpdateConfig = z
  .object({
    parallelism: z.number().int().min(1).max(256).optional(),
    delay: z.union([z.string(), z.number()]).optional(),
    order: z.enum(['stop-first', 'start-first']).optional(),
    failure_action: z.enum(['pause', 'rollback'], { error: 'drover pauses or rolls back a failed update ("pause", "rollback")' }).optional(),
    monitor: z.union([z.string(), z.number()]).optional(),
  })
  .strict();

export interface InstanceFields {
  instances?: number;
  mode?: 'global';
  update_config?: UpdateConfig;
}

/** The instance fields of a service, from its `deploy` keys. `hasVolumes`: it mounts named volumes. */
export function readComposeInstances(
  scope: Scope,
  deploy: { replicas?: number; mode?: 'replicated' | 'global'; update_config?: unknown } | undefined,
  hasVolumes: boolean,
  /** Where the number of instances was written, when not `deploy.replicas` (Compose's older `scale`). */
  replicasKey: PropertyKey[] = ['deploy', 'replicas'],
): InstanceFields {
  if (deploy === undefined) return {};
  const out: InstanceFields = {};
  if (deploy.mode === 'global') {
    if (deploy.replicas !== undefined) scope.reportKey(replicasKey, 'a global service runs one container per node: drop "replicas" or "mode: global"');
    out.mode = 'global';
  } else if (deploy.replicas !== undefined && deploy.replicas !== 1) out.instances = deploy.replicas;
  const field = out.mode !== undefined ? 'mode' : 'replicas';
  if ((out.mode !== undefined || out.instances !== undefined) && hasVolumes) {
    scope.reportKey(field === 'mode' ? ['deploy', 'mode'] : replicasKey, 'a service with a volume runs as one container, beside its data; several instances are for services without volumes (for standby copies of its data write "x-drover: { replication: { replicas: N } }")');
  }
  const u = deploy.update_config === undefined ? undefined : scope.attempt(() => scope.shape(['deploy', 'update_config'], DeployUpdateConfig, deploy.update_config), undefined);
  if (u !== undefined) {
    const seconds = (key: 'delay' | 'monitor'): number | undefined => {
      if (u[key] === undefined) return undefined;
      const s = parseDuration(u[key]);
      if (s === null) scope.reportKey(['deploy', 'update_config', key], `"${u[key]}" is not a duration ("10s", "1m30s")`);
      return s ?? undefined;
    };
    const delay = seconds('delay');
    const monitor = seconds('monitor');
    out.update_config = {
      parallelism: u.parallelism ?? 1,
      delay_seconds: delay ?? 0,
      order: u.order ?? 'stop-first',
      failure_action: u.failure_action ?? 'pause',
      monitor_seconds: Math.max(1, monitor ?? 60),
    };
  }
  return out;
}
