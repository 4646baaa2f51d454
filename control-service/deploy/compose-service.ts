import { z } from 'zod';
import type { Placement, RestartPolicy } from '#common/model.ts';
import { readComposeHealthcheck, readDroverHealthcheck } from './compose-healthcheck.ts';
import { readPorts } from './compose-ports.ts';
import { readComposeReplication } from './compose-replication.ts';
import { readVolumeUses } from './compose-volumes.ts';
import { readConstraints } from './constraints.ts';
import type { LinkTarget, ServiceDraft } from './draft.ts';
import type { Scope } from './scope.ts';
import { splitShellWords } from './shell-words.ts';
import { parseSize } from '#common/units.ts';

const Scalar = z.union([z.string(), z.number(), z.boolean()]);
const StringOrList = z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' }).nullable();
const MapOrList = z.union([z.record(z.string(), Scalar.nullable()), z.array(z.string())], {
  error: 'must be a mapping or a list of "KEY=VALUE"',
});

/** The Compose keys drover reads; anything else is refused by name. */
const Service = z
  .object({
    image: z.string().min(1),
    command: StringOrList.optional(),
    entrypoint: StringOrList.optional(),
    environment: MapOrList.optional(),
    ports: z.unknown().optional(),
    volumes: z.unknown().optional(),
    links: z.array(z.string()).optional(),
    depends_on: z
      .union([z.array(z.string()), z.record(z.string(), z.unknown())], { error: 'must be a list of services or a mapping' })
      .optional(),
    restart: z.string().optional(),
    healthcheck: z.unknown().optional(),
    labels: MapOrList.optional(),
    deploy: z
      .object({
        replicas: z.literal(1, { error: 'drover runs one container per service; for standby copies of its data on other nodes write "x-drover: { replication: { replicas: N } }"' }).optional(),
        resources: z
          .object({ limits: z.object({ memory: Scalar.optional(), cpus: Scalar.optional() }).strict().optional() })
          .strict()
          .optional(),
        placement: z.object({ constraints: z.array(z.string()).optional() }).strict().optional(),
      })
      .strict()
      .optional(),
    mem_limit: Scalar.optional(),
    cpu_shares: z.number().int().min(2).max(1024).optional(),
    'x-drover': z
      .object({ affinity: z.array(z.string()).optional(), anti_affinity: z.array(z.string()).optional(), strategy: z.enum(['spread', 'binpack', 'random']).optional(), replication: z.unknown().optional() })
      .strict()
      .optional(),
    'x-drover-healthcheck': z.unknown().optional(),
  })
  .strict();

/** Why some well-known keys are refused (the rest get the bare "unsupported key"). */
export const SERVICE_REASONS: Record<string, string> = {
  build: 'drover runs images and does not build them; build the image first and name it with "image:"',
  network_mode: 'drover connects applications through its routing proxy; use "ports:" and "links:"',
  net: 'drover connects applications through its routing proxy; use "ports:" and "links:"',
  networks: 'drover connects applications through its routing proxy; use "ports:" and "links:"',
  container_name: 'drover names each container after its service',
  env_file: 'the control service cannot read files beside the Compose file; list the variables under "environment:"',
  volumes_from: 'drover mounts datasets by name; share a named volume instead',
  expose: 'drover routes only published ports; use "ports:"',
  extends: 'write the service out in full (YAML anchors and "<<:" merges work)',
  scale: 'drover runs one container per service',
};

/**
 * Reads one Compose (or Fig) service into a draft. Pure; throws `DROVER_BAD_CONFIG` naming
 * the file, the service and the key.
 */
export function readComposeService(scope: Scope, name: string, raw: unknown): ServiceDraft {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) scope.failKey([], 'must be a mapping of keys');
  const spec = scope.shape([], Service, raw, SERVICE_REASONS);
  const draft: ServiceDraft = {
    name,
    scope,
    image: spec.image,
    environment: spec.environment === undefined ? {} : readEnvironment(scope, spec.environment),
    ports: spec.ports === undefined ? [] : readPorts(scope, spec.ports),
    volumes: spec.volumes === undefined ? [] : readVolumeUses(scope, name, spec.volumes),
    linkTargets: readLinkTargets(scope, spec.links, spec.depends_on),
    links: [],
    restart_policy: readRestart(scope, spec.restart),
    labels: spec.labels === undefined ? {} : readLabels(scope, spec.labels),
  };
  const command = readArgv(scope, 'command', spec.command);
  const entrypoint = readArgv(scope, 'entrypoint', spec.entrypoint);
  if (entrypoint !== undefined) draft.entrypoint = entrypoint;
  // Compose: a non-null entrypoint makes Docker ignore the image's CMD.
  if (command !== undefined) draft.command_line = command;
  else if (entrypoint !== undefined) draft.command_line = [];

  if (spec.healthcheck !== undefined && spec['x-drover-healthcheck'] !== undefined) {
    scope.failKey(['x-drover-healthcheck'], 'give either "healthcheck" or "x-drover-healthcheck", not both');
  }
  const health =
    spec['x-drover-healthcheck'] !== undefined
      ? readDroverHealthcheck(scope, spec['x-drover-healthcheck'])
      : spec.healthcheck !== undefined
        ? readComposeHealthcheck(scope, spec.healthcheck)
        : undefined;
  if (health !== undefined) draft.health_check = health;

  const limits = spec.deploy?.resources?.limits;
  if (limits?.memory !== undefined && spec.mem_limit !== undefined) scope.failKey(['mem_limit'], 'give the memory limit once');
  const memory = limits?.memory ?? spec.mem_limit;
  if (memory !== undefined) {
    const key = limits?.memory !== undefined ? ['deploy', 'resources', 'limits', 'memory'] : ['mem_limit'];
    const bytes = parseSize(memory);
    if (bytes === null) scope.failKey(key, `"${memory}" is not a size ("512M", "1G", bytes)`);
    if (bytes < 1024 * 1024) scope.failKey(key, `"${memory}" is below the smallest memory limit, 1M`);
    draft.memory_limit = bytes;
  }
  if (limits?.cpus !== undefined && spec.cpu_shares !== undefined) scope.failKey(['cpu_shares'], 'give "cpus" or "cpu_shares", not both');
  if (limits?.cpus !== undefined) draft.cpu_shares = cpuShares(scope, limits.cpus);
  else if (spec.cpu_shares !== undefined) draft.cpu_shares = spec.cpu_shares;

  const constraints = spec.deploy?.placement?.constraints;
  const { replication, ...x } = spec['x-drover'] ?? {};
  if (replication !== undefined) draft.replication = readComposeReplication(scope, ['x-drover', 'replication'], replication);
  if (constraints !== undefined || Object.keys(x).length > 0) {
    const placement: Placement = {
      constraints: readConstraints(scope, ['deploy', 'placement', 'constraints'], constraints ?? []),
      affinity: x.affinity ?? [],
      anti_affinity: x.anti_affinity ?? [],
      strategy: x.strategy ?? 'spread',
    };
    draft.placement = placement;
  }
  return draft;
}

/**
 * `cpus` (a share of one CPU) → Docker's `cpu_shares` weight, 1024 being one full CPU's
 * weight: `0.5` → 512. Weights are relative, not caps, and 1024 is their top here, so any
 * `cpus` of 1 or more gets the full weight.
 */
function cpuShares(scope: Scope, cpus: string | number | boolean): number {
  const n = typeof cpus === 'number' ? cpus : typeof cpus === 'string' && /^\d+(\.\d+)?$/.test(cpus) ? Number(cpus) : NaN;
  if (!(n > 0)) scope.failKey(['deploy', 'resources', 'limits', 'cpus'], `"${cpus}" is not a number of CPUs ("0.5", "2")`);
  return Math.max(2, Math.min(1024, Math.round(n * 1024)));
}

function readArgv(scope: Scope, key: 'command' | 'entrypoint', value: string | string[] | null | undefined): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value;
  const words = splitShellWords(value);
  if (!Array.isArray(words)) scope.failKey([key], `cannot split "${value}" into words: ${words.error}`);
  return words;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function readEnvironment(scope: Scope, value: Record<string, string | number | boolean | null> | string[]): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: [string, unknown, PropertyKey[]][] = Array.isArray(value)
    ? value.map((item, i) => {
        const eq = item.indexOf('=');
        return eq < 0 ? [item, null, ['environment', i]] : [item.slice(0, eq), item.slice(eq + 1), ['environment', i]];
      })
    : Object.entries(value).map(([k, v]) => [k, v, ['environment', k]]);
  for (const [name, v, key] of entries) {
    if (!ENV_NAME.test(name)) scope.failKey(key, `"${name}" is not a variable name`);
    if (v === null) {
      scope.failKey(key, `"${name}" has no value; drover does not read the environment of the machine that deploys, so write "${name}=value"`);
    }
    env[name] = String(v);
  }
  return env;
}

function readLabels(scope: Scope, value: Record<string, string | number | boolean | null> | string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  const entries: [string, unknown, PropertyKey[]][] = Array.isArray(value)
    ? value.map((item, i) => {
        const eq = item.indexOf('=');
        return eq < 0 ? [item, '', ['labels', i]] : [item.slice(0, eq), item.slice(eq + 1), ['labels', i]];
      })
    : Object.entries(value).map(([k, v]) => [k, v ?? '', ['labels', k]]);
  for (const [name, v, key] of entries) {
    if (name.startsWith('com.docker.compose.')) scope.failKey(key, `"${name}": labels under com.docker.compose. are reserved`);
    labels[name] = String(v);
  }
  return labels;
}

const RESTART = /^(no|always|unless-stopped|on-failure(?::(\d+))?)$/;

/**
 * Compose `restart` → drover's restart policy: `no` → never; `always` and `unless-stopped`
 * → always (drover's agent keeps the desired state, so a container stopped by hand is
 * restarted either way); `on-failure[:N]` → on-failure with at most N retries (`:0`, no cap).
 */
function readRestart(scope: Scope, value: string | undefined): RestartPolicy {
  if (value === undefined) return { name: 'never' };
  const m = RESTART.exec(value);
  if (!m) scope.failKey(['restart'], `"${value}" is not a restart policy (no, always, on-failure[:N], unless-stopped)`);
  if (m[1] === 'no') return { name: 'never' };
  if (m[1] === 'always' || m[1] === 'unless-stopped') return { name: 'always' };
  const retries = m[2] === undefined ? 0 : Number(m[2]);
  return retries > 0 ? { name: 'on-failure', maximum_retry_count: retries } : { name: 'on-failure' };
}

const DependsLong = z
  .object({ condition: z.enum(['service_started', 'service_healthy']).optional(), required: z.boolean().optional() })
  .strict();

/**
 * `links: [db, "db:database"]` and `depends_on` (list, or mapping with `condition` and
 * `required`) both become links to the other service's ports; the alias defaults to the
 * service name without its non-alphanumeric characters (Flocker's alias rule).
 */
function readLinkTargets(scope: Scope, links: string[] | undefined, dependsOn: string[] | Record<string, unknown> | undefined): LinkTarget[] {
  const out: LinkTarget[] = [];
  const add = (service: string, alias: string | undefined, key: PropertyKey[], optional = false): void => {
    const name = alias ?? service.replace(/[^a-zA-Z0-9]/g, '');
    if (!/^[a-zA-Z0-9]+$/.test(name)) scope.failKey(key, `"${alias ?? service}" is not a link alias (letters and digits only)`);
    if (out.some((t) => t.service === service)) return;
    out.push(optional ? { service, alias: name, key, optional } : { service, alias: name, key });
  };
  links?.forEach((text, i) => {
    const [service, alias, ...rest] = text.split(':');
    if (rest.length > 0 || !service) scope.failKey(['links', i], `"${text}" is not a link ("service" or "service:alias")`);
    add(service, alias, ['links', i]);
  });
  if (Array.isArray(dependsOn)) dependsOn.forEach((service, i) => add(service, undefined, ['depends_on', i]));
  else if (dependsOn !== undefined) {
    for (const [service, raw] of Object.entries(dependsOn)) {
      const spec = scope.shape(['depends_on', service], DependsLong.nullable(), raw) ?? {};
      add(service, undefined, ['depends_on', service], spec.required === false);
    }
  }
  return out;
}
