import { z } from 'zod';
import { AppName, Link, PortMapping, RestartPolicy, Uuid } from '#common/model.ts';
import { readMaximumSize } from './compose-volumes.ts';
import type { FileDraft, ServiceDraft, VolumeDraft } from './draft.ts';
import { Scope } from './scope.ts';
import { parseSize } from '#common/units.ts';
import type { YamlSource } from './yaml-source.ts';

/**
 * Flocker's application format (flocker/control/_config.py `FlockerConfiguration`): the keys
 * Flocker allowed, and no others. Environment values must be strings, as Flocker required.
 */
const FlockerApp = z
  .object({
    image: z.string().min(1),
    environment: z.record(z.string(), z.string()).optional(),
    ports: z.array(PortMapping).optional(),
    links: z.array(Link).optional(),
    volume: z
      .object({
        mountpoint: z.string().regex(/^\//, 'must be an absolute path'),
        maximum_size: z.union([z.string(), z.number()]).optional(),
        dataset_id: Uuid.optional(),
      })
      .strict()
      .optional(),
    mem_limit: z.union([z.string(), z.number()]).optional(),
    cpu_shares: z.number().int().min(1).max(1024).optional(),
    restart_policy: RestartPolicy.optional(),
  })
  .strict();

const FlockerTop = z
  .object({
    version: z.literal(1, { error: 'must be 1' }),
    applications: z.record(z.string(), z.unknown()),
  })
  .strict();

/**
 * Reads a Flocker application file (`version: 1`, `applications:`). Each application's one
 * `volume` becomes a dataset named after the application, as in Flocker; an explicit
 * `dataset_id` (Flocker 1.x) names an existing dataset instead of the derived one.
 */
export function readFlockerFile(src: YamlSource, top: Record<string, unknown>): FileDraft {
  const fileScope = new Scope(src, []);
  const spec = fileScope.shape([], FlockerTop, top);
  const volumes = new Map<string, VolumeDraft>();
  const services: ServiceDraft[] = Object.entries(spec.applications).map(([name, raw]) => {
    const scope: Scope = new Scope(src, ['applications', name], name);
    if (!AppName.safeParse(name).success) scope.fail([], `"${name}" is not an application name drover can use`);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) scope.failKey([], 'must be a mapping of keys');
    const app = scope.shape([], FlockerApp, raw);
    const draft: ServiceDraft = {
      name,
      scope,
      image: app.image,
      environment: app.environment ?? {},
      ports: app.ports ?? [],
      volumes: [],
      linkTargets: [],
      links: app.links ?? [],
      restart_policy: app.restart_policy ?? { name: 'never' },
      labels: {},
      runtime: {},
      files: [],
    };
    if (app.volume !== undefined) {
      draft.volumes.push({ volume: name, mountpoint: app.volume.mountpoint, anonymous: false, readOnly: false, key: ['volume'] });
      const size = app.volume.maximum_size === undefined ? null : readMaximumSize(scope, ['volume', 'maximum_size'], app.volume.maximum_size);
      const volume: VolumeDraft = { name, maximum_size: size };
      if (app.volume.dataset_id !== undefined) volume.dataset_id = app.volume.dataset_id;
      volumes.set(name, volume);
    }
    if (app.mem_limit !== undefined) {
      const bytes = parseSize(app.mem_limit);
      if (bytes === null || bytes < 1024 * 1024) scope.failKey(['mem_limit'], `"${app.mem_limit}" is not a memory limit of at least 1M`);
      draft.memory_limit = bytes;
    }
    if (app.cpu_shares !== undefined) draft.cpu_shares = app.cpu_shares;
    return draft;
  });
  return { services, volumes, volumesMustBeDeclared: true, inactive: new Set() };
}
