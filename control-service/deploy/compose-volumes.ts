import { z } from 'zod';
import type { VolumeDraft, VolumeUse } from './draft.ts';
import type { Scope } from './scope.ts';
import { parseSize } from '#common/units.ts';

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

const VolumeLong = z
  .object({
    type: z.enum(['volume', 'bind', 'tmpfs', 'npipe', 'image', 'cluster']).default('volume'),
    source: z.string().optional(),
    target: z.string(),
    read_only: z.boolean().optional(),
    volume: z.object({ nocopy: z.boolean().optional() }).strict().optional(),
    bind: z.object({ create_host_path: z.boolean().optional() }).strict().optional(),
    tmpfs: z.object({ size: z.union([z.string(), z.number()]).optional(), mode: z.number().int().optional() }).strict().optional(),
  })
  .strict();

const VOLUME_REASONS: Record<string, string> = {
  subpath: 'needs Docker API 1.45; Docker 20.10 mounts whole volumes',
};

/** A bind mount as written; compose-files.ts decides whether it can travel with the project. */
export interface BindUse {
  key: PropertyKey[];
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * Reads a service's `volumes:`. Named volumes (`data:/var/lib/redis`, `data:/path:ro`, or the
 * long form with `type: volume`) become datasets; an anonymous one (`/var/lib/mysql`, as Fig
 * files wrote it) is named after the service, as Flocker did. `type: tmpfs` entries become
 * tmpfs mounts (`tmpfs.size`, `tmpfs.mode`). Bind mounts (`./x:/path:ro`, `type: bind`) are
 * returned as written (`binds`) for compose-files.ts. Each entry's problem is recorded and the
 * others are still read.
 */
export function readVolumeUses(scope: Scope, service: string, value: unknown): { uses: VolumeUse[]; tmpfs: Record<string, string>; binds: BindUse[] } {
  const list = scope.shape(['volumes'], z.array(z.unknown()), value);
  const uses: VolumeUse[] = [];
  const binds: BindUse[] = [];
  const tmpfs: Record<string, string> = {};
  list.forEach((entry, i) =>
    scope.attempt(() => {
      const key: PropertyKey[] = ['volumes', i];
      let source: string | undefined;
      let target: string;
      let readOnly = false;
      if (typeof entry === 'string') {
        const parts = entry.split(':');
        if (parts.length > 3) scope.failKey(key, `"${entry}" is not a volume ("NAME:/path" or "NAME:/path:ro")`);
        if (parts.length === 3) {
          const modes = parts[2]!.split(',');
          const unknown = modes.find((m) => !['ro', 'rw', 'nocopy'].includes(m));
          if (unknown !== undefined) scope.failKey(key, `"${entry}": unsupported mode "${unknown}" (drover reads "ro", "rw" and "nocopy")`);
          readOnly = modes.includes('ro');
        }
        if (parts.length === 1) target = parts[0]!;
        else [source, target] = [parts[0]!, parts[1]!];
      } else {
        const long = scope.shape(key, VolumeLong, entry, VOLUME_REASONS);
        if (long.type === 'bind') {
          if (long.source === undefined) scope.failKey([...key, 'source'], 'is required for a bind mount');
          binds.push({ key, source: long.source, target: long.target, readOnly: long.read_only === true });
          return;
        }
        if (long.bind !== undefined) scope.failKey([...key, 'bind'], 'only a bind mount has bind options');
        if (long.type === 'tmpfs') {
          if (!long.target.startsWith('/')) scope.failKey([...key, 'target'], `"${long.target}" must be an absolute path in the container`);
          const size = long.tmpfs?.size === undefined ? null : parseSize(long.tmpfs.size);
          if (long.tmpfs?.size !== undefined && size === null) scope.failKey([...key, 'tmpfs', 'size'], `"${long.tmpfs.size}" is not a size ("64M", bytes)`);
          const options = [...(size === null ? [] : [`size=${size}`]), ...(long.tmpfs?.mode === undefined ? [] : [`mode=${long.tmpfs.mode.toString(8)}`]), ...(long.read_only ? ['ro'] : [])];
          if (tmpfs[long.target] !== undefined) scope.failKey(key, `"${long.target}" is a tmpfs twice`);
          tmpfs[long.target] = options.join(',');
          return;
        }
        if (long.type !== 'volume') scope.failKey([...key, 'type'], `volumes of type "${long.type}" are not supported; use a named volume`);
        readOnly = long.read_only === true;
        source = long.source;
        target = long.target;
      }
      if (source !== undefined && /^[./~$]/.test(source)) {
        binds.push({ key, source, target, readOnly });
        return;
      }
      if (!target.startsWith('/')) scope.failKey(key, `"${target}" must be an absolute path in the container`);
      if (source !== undefined && !VOLUME_NAME.test(source)) {
        scope.failKey(key, `"${source}" is not a volume name (letters, digits, "_", "." or "-")`);
      }
      const volume = source ?? service;
      if (uses.some((u) => u.mountpoint === target)) scope.failKey(key, `"${target}" is mounted twice`);
      if (uses.some((u) => u.volume === volume)) {
        scope.failKey(key, source === undefined ? 'only one anonymous volume per service; name the others ("data:/path")' : `volume "${volume}" is mounted twice`);
      }
      uses.push({ volume, mountpoint: target, anonymous: source === undefined, readOnly, key });
    }, undefined),
  );
  return { uses, tmpfs, binds };
}

const TopVolume = z
  .object({
    driver: z.string().optional(),
    driver_opts: z.object({ size: z.union([z.string(), z.number()]).optional() }).strict().optional(),
    labels: z.union([z.record(z.string(), z.string()), z.array(z.string())]).optional(),
    name: z.string().optional(),
    'x-drover': z.object({ size: z.union([z.string(), z.number()]).optional() }).strict().optional(),
  })
  .strict()
  .nullable();

const TOP_REASONS: Record<string, string> = {
  external: 'drover volumes belong to their project; refer to an existing dataset from a Flocker application file ("volume: { dataset_id }")',
};

/**
 * Reads the top-level `volumes:` of a Compose file. Size: `driver_opts.size` or
 * `x-drover.size` (`500M`, `2.5G`, bytes) → `maximum_size`, at least 64 MiB, rounded up to
 * a whole KiB. `driver` may only be `drover`, `local` (Compose's default) or absent: drover is the driver.
 */
export function readTopVolumes(scope: Scope, value: unknown): Map<string, VolumeDraft> {
  const record = scope.shape(['volumes'], z.record(z.string(), z.unknown()).nullable(), value) ?? {};
  const out = new Map<string, VolumeDraft>();
  for (const [name, raw] of Object.entries(record)) {
    // Declared even when its settings are wrong, so its users get no second, false problem.
    out.set(name, { name, maximum_size: null });
    scope.attempt(() => {
      const key: PropertyKey[] = ['volumes', name];
      if (!VOLUME_NAME.test(name)) scope.failKey(key, `"${name}" is not a volume name (letters, digits, "_", "." or "-")`);
      const spec = scope.shape(key, TopVolume, raw, TOP_REASONS) ?? {};
      // `local` is Compose's default driver, as common in public files as omitting it: a volume
      // of this stack, which drover provides as a dataset that moves with its service.
      if (spec.driver !== undefined && spec.driver !== 'local' && !/^drover(-[a-z0-9]+)?$/.test(spec.driver)) {
        scope.failKey([...key, 'driver'], `"${spec.driver}" is not drover: every volume of a deploy is a drover dataset (omit "driver")`);
      }
      if (spec.name !== undefined) scope.failKey([...key, 'name'], 'volume names are set by drover ("<project>_<volume>"); rename the key instead');
      if (spec.labels !== undefined) scope.failKey([...key, 'labels'], 'volume labels are not supported');
      const sizes: [PropertyKey[], unknown][] = [];
      if (spec.driver_opts?.size !== undefined) sizes.push([[...key, 'driver_opts', 'size'], spec.driver_opts.size]);
      if (spec['x-drover']?.size !== undefined) sizes.push([[...key, 'x-drover', 'size'], spec['x-drover'].size]);
      if (sizes.length > 1) scope.failKey(key, 'give the size once, in "driver_opts.size" or "x-drover.size"');
      const size = sizes[0];
      out.set(name, { name, maximum_size: size === undefined ? null : readMaximumSize(scope, size[0], size[1]) });
    }, undefined);
  }
  return out;
}

const MIN_SIZE = 64 * 1024 * 1024;

/** A dataset size: `500M`, `2.5G`, bytes; at least 64 MiB; rounded up to a whole KiB. */
export function readMaximumSize(scope: Scope, key: PropertyKey[], value: unknown): number {
  const bytes = parseSize(value);
  if (bytes === null) scope.failKey(key, `"${String(value)}" is not a size (bytes, or a number with K, M, G or T: "500M", "2.5G")`);
  if (bytes < MIN_SIZE) scope.failKey(key, `"${String(value)}" is smaller than the smallest dataset, 64M`);
  return Math.ceil(bytes / 1024) * 1024;
}
