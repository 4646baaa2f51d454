import { z } from 'zod';
import type { Dependency, Placement, RestartPolicy } from '#common/model.ts';
import { isSharedHostPath } from '#common/model.ts';
import { readProjectBind, readServiceFiles, takeSecretEnv, type FileContext, type TopFiles } from './compose-files.ts';
import { readComposeHealthcheck, readDroverHealthcheck } from './compose-healthcheck.ts';
import { readExpose, readPorts } from './compose-ports.ts';
import { readServiceNetworks } from './compose-networks.ts';
import { readComposeMove } from './compose-move.ts';
import { readComposeReplication } from './compose-replication.ts';
import { readVolumeUses } from './compose-volumes.ts';
import { readConstraints } from './constraints.ts';
import { readEnvFiles } from './compose-env-file.ts';
import { RUNTIME_KEYS, readHostBind, readRuntimeKeys } from './compose-runtime-keys.ts';
import type { LinkTarget, ServiceDraft } from './draft.ts';
import { readComposeInstances } from './compose-instances.ts';
import type { Scope } from './scope.ts';
import { splitShellWords } from './shell-words.ts';
import { parseSize } from '#common/units.ts';
import { didYouMean } from '#common/did-you-mean.ts';

const Scalar = z.union([z.string(), z.number(), z.boolean()]);
const StringOrList = z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' }).nullable();
const MapOrList = z.union([z.record(z.string(), Scalar.nullable()), z.array(z.string())], {
  error: 'must be a mapping or a list of "KEY=VALUE"',
});

/** The Compose keys drover reads, each with its shape; anything else is refused by name. */
const SERVICE_KEYS = {
  image: z.string().min(1),
  command: StringOrList.optional(),
  entrypoint: StringOrList.optional(),
  environment: MapOrList.optional(),
  env_file: z.unknown().optional(),
  ports: z.unknown().optional(),
  expose: z.unknown().optional(),
  networks: z.unknown().optional(),
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
      // Several instances (docs/DESIGN.md §30); standby copies of data are "x-drover: { replication: … }".
      replicas: z.number({ error: 'must be a number of instances' }).int().min(0).max(256).optional(),
      mode: z.enum(['replicated', 'global']).optional(),
      update_config: z.unknown().optional(), // compose-instances.ts, so its problems join the others
      resources: z
        .object({
          limits: z.object({ memory: Scalar.optional(), cpus: Scalar.optional(), pids: z.number().int().min(1).optional() }).strict().optional(),
          reservations: z.object({ memory: Scalar.optional() }).strict().optional(),
        })
        .strict()
        .optional(),
      placement: z.object({ constraints: z.array(z.string()).optional() }).strict().optional(),
      restart_policy: z.unknown().optional(), // readDeployRestart, so its problems join the others
    })
    .strict()
    .optional(),
  /** Compose's older spelling of `deploy.replicas`. */
  scale: z.number({ error: 'must be a number of instances' }).int().min(0).max(256).optional(),
  mem_limit: Scalar.optional(),
  mem_reservation: Scalar.optional(),
  memswap_limit: Scalar.optional(),
  mem_swappiness: z.number().int().min(0).max(100).optional(),
  pids_limit: z.number().int().min(-1).optional(),
  cpu_shares: z.number().int().min(2).max(1024).optional(),
  // Read by compose-file.ts before the service (they decide whether and from what it is read).
  profiles: z.unknown().optional(),
  extends: z.unknown().optional(),
  configs: z.unknown().optional(),
  secrets: z.unknown().optional(),
  ...RUNTIME_KEYS,
  'x-drover': z
    .object({
      affinity: z.array(z.string()).optional(),
      anti_affinity: z.array(z.string()).optional(),
      strategy: z.enum(['spread', 'binpack', 'random']).optional(),
      replication: z.unknown().optional(),
      secret_env: z.unknown().optional(),
      move: z.unknown().optional(),
    })
    .strict()
    .optional(),
  'x-drover-healthcheck': z.unknown().optional(),
};
type ServiceSpec = { [K in keyof typeof SERVICE_KEYS]?: z.infer<(typeof SERVICE_KEYS)[K]> };

const NETWORKS = 'drover connects applications through its routing proxy; services reach each other by name on the project\'s networks ("networks:"), and "ports:" publish on every node';

/** Why some well-known keys are refused (the rest get the bare "unsupported key"). */
export const SERVICE_REASONS: Record<string, string> = {
  build: 'drover runs images and does not build them; build the image first and name it with "image:"',
  network_mode: NETWORKS,
  net: NETWORKS,
  volumes_from: 'drover mounts datasets by name; share a named volume instead',
};

/** What a Compose file's deploy sends beside the services (from the CLI's trailer, compose-file.ts). */
export interface ServiceContext {
  /** The CLI interpolated the file (`$` is then literal, and bare environment names were resolved). */
  interpolated?: boolean;
  /** `env_file:` path as written → its variables, or null when the CLI found no such file. Absent: not sent by a CLI. */
  envFiles?: Readonly<Record<string, Record<string, string> | null>>;
  /** The file's declared networks (compose-networks.ts); absent: only `default`. */
  networks?: ReadonlySet<string>;
  /** The deploy's files (compose-files.ts); absent: no file can be read (Fig files). */
  files?: FileContext;
  /** The file's top-level `configs:` and `secrets:`, read. */
  top?: { configs: TopFiles; secrets: TopFiles };
}

/**
 * Reads one Compose (or Fig) service into a draft. Pure. Every problem is recorded (each
 * unknown key, each bad value) and the keys that can still be read are, so that one parse
 * names them all; a draft with problems is marked `incomplete`. A service that is not a
 * mapping is abandoned (`ConfigAbort`, for the caller's `Scope.attempt`).
 */
export function readComposeService(scope: Scope, name: string, raw: unknown, context: ServiceContext = {}): ServiceDraft {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) scope.failKey([], 'must be a mapping of keys');
  const record = raw as Record<string, unknown>;
  const problemsBefore = scope.src.problems.length;
  const spec: ServiceSpec = {};
  for (const [key, value] of Object.entries(record)) {
    const schema = (SERVICE_KEYS as Record<string, z.ZodType>)[key];
    // Compose's extension fields (`x-…`) are for other tools and YAML anchors; drover's own are read.
    if (schema === undefined && key.startsWith('x-') && !key.startsWith('x-drover')) continue;
    if (schema === undefined) {
      const meant = SERVICE_REASONS[key] === undefined ? didYouMean(key, Object.keys(SERVICE_KEYS)) : undefined;
      scope.reportUnsupported([key], SERVICE_REASONS[key] ?? (meant === undefined ? undefined : `did you mean "${meant}"?`));
    } else (spec as Record<string, unknown>)[key] = scope.attempt(() => scope.shape([key], schema, value, SERVICE_REASONS), undefined);
  }
  // With `build:` the refusal of build already says to name the image.
  if (!('image' in record) && !('build' in record)) scope.reportKey(['image'], 'is required');
  const key = <T>(fn: () => T, fallback: T): T => scope.attempt(fn, fallback);
  const fileEnv = key(() => readEnvFiles(scope, spec.env_file, context), {});
  const draft: ServiceDraft = {
    name,
    scope,
    image: spec.image ?? '',
    environment: { ...fileEnv, ...(spec.environment === undefined ? {} : key(() => readEnvironment(scope, spec.environment!, context.interpolated === true), {})) },
    ports: spec.ports === undefined ? [] : key(() => readPorts(scope, spec.ports), []),
    ...(spec.expose === undefined ? {} : { expose: key(() => readExpose(scope, spec.expose), []) }),
    ...(spec.networks === undefined ? {} : { networks: key(() => readServiceNetworks(scope, spec.networks, context.networks ?? new Set(['default'])), {}) }),
    volumes: [],
    linkTargets: key(() => readLinkTargets(scope, spec.links, spec.depends_on), []),
    links: [],
    restart_policy: key(() => readRestartKeys(scope, spec.restart, spec.deploy?.restart_policy), { name: 'never' }),
    labels: spec.labels === undefined ? {} : key(() => readLabels(scope, spec.labels!), {}),
    runtime: key(() => readRuntimeKeys(scope, spec), {}),
    files: [],
  };
  const top = context.top ?? { configs: new Map(), secrets: new Map() };
  for (const kind of ['configs', 'secrets'] as const) {
    if (spec[kind] !== undefined) draft.files.push(...key(() => readServiceFiles(scope, kind, spec[kind], top[kind]), []));
  }
  if (spec.volumes !== undefined) {
    const uses = key(() => readVolumeUses(scope, name, spec.volumes), { uses: [], tmpfs: {}, binds: [] });
    draft.volumes = uses.uses;
    for (const bind of uses.binds) {
      if (isSharedHostPath(bind.source.replace(/\/+$/, ''))) {
        const shared = key(() => readHostBind(scope, bind.key, bind.source, bind.target, bind.readOnly), null);
        if (shared !== null) (draft.runtime.host_binds ??= []).push(shared);
        continue;
      }
      const file = key(() => (context.files ? readProjectBind(scope, bind.key, bind.source, bind.target, bind.readOnly, context.files) : scope.failKey(bind.key, `"${bind.source}": bind mounts are not read from this kind of file; use a named volume`)), null);
      if (file !== null) draft.files.push(file);
    }
    if (Object.keys(uses.tmpfs).length > 0) {
      const both = Object.keys(uses.tmpfs).find((path) => draft.runtime.tmpfs?.[path] !== undefined);
      if (both !== undefined) scope.reportKey(['volumes'], `"${both}" is a tmpfs twice (also under "tmpfs:")`);
      draft.runtime.tmpfs = { ...uses.tmpfs, ...draft.runtime.tmpfs };
    }
  }
  const command = key(() => readArgv(scope, 'command', spec.command), undefined);
  const entrypoint = key(() => readArgv(scope, 'entrypoint', spec.entrypoint), undefined);
  if (entrypoint !== undefined) draft.entrypoint = entrypoint;
  // Compose: a non-null entrypoint makes Docker ignore the image's CMD.
  if (command !== undefined) draft.command_line = command;
  else if (entrypoint !== undefined) draft.command_line = [];

  if (spec.healthcheck !== undefined && spec['x-drover-healthcheck'] !== undefined) {
    scope.reportKey(['x-drover-healthcheck'], 'give either "healthcheck" or "x-drover-healthcheck", not both');
  }
  const health = key(
    () =>
      spec['x-drover-healthcheck'] !== undefined
        ? readDroverHealthcheck(scope, spec['x-drover-healthcheck'])
        : spec.healthcheck !== undefined
          ? readComposeHealthcheck(scope, spec.healthcheck)
          : undefined,
    undefined,
  );
  if (health !== undefined) draft.health_check = health;
  key(() => readResources(scope, spec, draft), undefined);
  const constraints = spec.deploy?.placement?.constraints;
  const { replication, secret_env: secretEnv, move, ...x } = spec['x-drover'] ?? {};
  if (secretEnv !== undefined) {
    const secrets = key(() => (context.files ? takeSecretEnv(scope, secretEnv, draft.environment, context.files) : scope.failKey(['x-drover', 'secret_env'], 'secret environment values are not read from this kind of file')), {});
    if (Object.keys(secrets).length > 0) draft.secret_environment = secrets;
  }
  if (move !== undefined) {
    const policy = key(() => readComposeMove(scope, ['x-drover', 'move'], move), undefined);
    if (policy !== undefined) draft.move = policy;
  }
  if (replication !== undefined) {
    const policy = key(() => readComposeReplication(scope, ['x-drover', 'replication'], replication), undefined);
    if (policy !== undefined) draft.replication = policy;
  }
  if (constraints !== undefined || Object.keys(x).length > 0) {
    const placement: Placement = {
      constraints: key(() => readConstraints(scope, ['deploy', 'placement', 'constraints'], constraints ?? []), []),
      affinity: x.affinity ?? [],
      anti_affinity: x.anti_affinity ?? [],
      strategy: x.strategy ?? 'spread',
    };
    draft.placement = placement;
  }
  if (spec.scale !== undefined && spec.deploy?.replicas !== undefined && spec.scale !== spec.deploy.replicas) {
    scope.reportKey(['scale'], `${spec.scale} instances here, ${spec.deploy.replicas} under "deploy.replicas": give the number once`);
  }
  const deploy = spec.scale === undefined || spec.deploy?.replicas !== undefined ? spec.deploy : { ...spec.deploy, replicas: spec.scale };
  Object.assign(draft, key(() => readComposeInstances(scope, deploy, draft.volumes.length > 0, spec.deploy?.replicas === undefined && spec.scale !== undefined ? ['scale'] : undefined), {}));
  if (scope.src.problems.length > problemsBefore) draft.incomplete = true;
  return draft;
}

function readResources(scope: Scope, spec: ServiceSpec, draft: ServiceDraft): void {
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
  if (spec.mem_swappiness !== undefined) draft.swappiness = spec.mem_swappiness;
  const reservation = spec.deploy?.resources?.reservations?.memory;
  if (reservation !== undefined && spec.mem_reservation !== undefined) scope.reportKey(['mem_reservation'], 'give the memory reservation once');
  const soft = reservation ?? spec.mem_reservation;
  if (soft !== undefined) {
    const key = reservation !== undefined ? ['deploy', 'resources', 'reservations', 'memory'] : ['mem_reservation'];
    const bytes = parseSize(soft);
    if (bytes === null || bytes < 1024 * 1024) scope.reportKey(key, `"${soft}" is not a size of at least 1M ("256M", "1G")`);
    else if (draft.memory_limit !== undefined && bytes > draft.memory_limit) scope.reportKey(key, `"${soft}" is above the memory limit`);
    else draft.runtime.mem_reservation = bytes;
  }
  if (spec.memswap_limit !== undefined) {
    // Docker's --memory-swap: memory plus swap; -1 for unlimited swap; needs a memory limit.
    const bytes = spec.memswap_limit === -1 || spec.memswap_limit === '-1' ? -1 : parseSize(spec.memswap_limit);
    if (bytes === null) scope.reportKey(['memswap_limit'], `"${spec.memswap_limit}" is not a size ("1G") or -1`);
    else if (draft.memory_limit === undefined) scope.reportKey(['memswap_limit'], 'needs a memory limit ("mem_limit" or "deploy.resources.limits.memory")');
    else if (bytes !== -1 && bytes < draft.memory_limit) scope.reportKey(['memswap_limit'], `"${spec.memswap_limit}" is below the memory limit: it counts memory and swap together`);
    else draft.runtime.memswap_limit = bytes;
  }
  const pids = spec.deploy?.resources?.limits?.pids;
  if (pids !== undefined && spec.pids_limit !== undefined) scope.reportKey(['pids_limit'], 'give the process limit once');
  const pidsLimit = pids ?? spec.pids_limit;
  if (pidsLimit !== undefined && pidsLimit !== 0) draft.runtime.pids_limit = pidsLimit;
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

function readEnvironment(scope: Scope, value: Record<string, string | number | boolean | null> | string[], interpolated: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: [string, unknown, PropertyKey[]][] = Array.isArray(value)
    ? value.map((item, i) => {
        const eq = item.indexOf('=');
        return eq < 0 ? [item, null, ['environment', i]] : [item.slice(0, eq), item.slice(eq + 1), ['environment', i]];
      })
    : Object.entries(value).map(([k, v]) => [k, v, ['environment', k]]);
  for (const [name, v, key] of entries) {
    if (!ENV_NAME.test(name)) {
      scope.reportKey(key, `"${name}" is not a variable name`);
      continue;
    }
    // A bare name takes its value from the deploying shell, which only the CLI sees: it
    // writes the value in (or drops the name, warning, when it is unset there, as Compose does).
    if (v === null) {
      if (!interpolated) scope.reportKey(key, `"${name}" has no value; deploy with the drover CLI, which takes it from its environment, or write "${name}=value"`);
      continue;
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
    if (name.startsWith('com.docker.compose.') || name.startsWith('drover.')) {
      scope.reportKey(key, `"${name}": labels under ${name.startsWith('drover.') ? 'drover.' : 'com.docker.compose.'} are reserved`);
      continue;
    }
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
const DeployRestartPolicy = z
  .object({
    condition: z.enum(['none', 'on-failure', 'any'], { error: 'must be "none", "on-failure" or "any"' }).optional(),
    max_attempts: z.number({ error: 'must be a number of attempts' }).int().min(0).optional(),
    delay: z.unknown().optional(),
    window: z.unknown().optional(),
  })
  .strict();

/**
 * `restart` and swarm's `deploy.restart_policy` (`condition: none | on-failure | any`,
 * `max_attempts`), as Compose reads them: either one, or both when they agree. Docker 20.10's
 * restart policy has no delay between attempts and no window, so `delay` and `window` are
 * refused rather than ignored.
 */
function readRestartKeys(scope: Scope, restart: string | undefined, deployPolicy: unknown): RestartPolicy {
  const fromRestart = readRestart(scope, restart);
  if (deployPolicy === undefined) return fromRestart;
  const p = scope.shape(['deploy', 'restart_policy'], DeployRestartPolicy, deployPolicy);
  for (const k of ['delay', 'window'] as const) {
    if (p[k] !== undefined) scope.reportKey(['deploy', 'restart_policy', k], 'not supported: Docker restarts a failed container at once, with its own growing back-off; drop the key');
  }
  const condition = p.condition ?? 'any';
  if (condition !== 'on-failure' && p.max_attempts !== undefined && p.max_attempts > 0) {
    scope.reportKey(['deploy', 'restart_policy', 'max_attempts'], `applies to "condition: on-failure" only (this one is "${condition}")`);
  }
  const fromDeploy: RestartPolicy =
    condition === 'none'
      ? { name: 'never' }
      : condition === 'any'
        ? { name: 'always' }
        : p.max_attempts !== undefined && p.max_attempts > 0
          ? { name: 'on-failure', maximum_retry_count: p.max_attempts }
          : { name: 'on-failure' };
  if (restart !== undefined && JSON.stringify(fromRestart) !== JSON.stringify(fromDeploy)) {
    scope.reportKey(['deploy', 'restart_policy'], `says ${describeRestart(fromDeploy)} but "restart: ${restart}" says ${describeRestart(fromRestart)}: give one`);
  }
  return fromDeploy;
}

function describeRestart(p: RestartPolicy): string {
  return p.name === 'on-failure' && p.maximum_retry_count !== undefined ? `on-failure (at most ${p.maximum_retry_count} retries)` : p.name;
}

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
  .object({
    condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']).optional(),
    required: z.boolean().optional(),
    restart: z.boolean().optional(),
  })
  .strict();

/**
 * `links: [db, "db:database"]` and `depends_on` (list, or mapping with `condition` and
 * `required`) both become links to the other service's ports; the alias defaults to the
 * service name without its non-alphanumeric characters (Flocker's alias rule). A `depends_on`
 * entry also orders start-up (`condition`, default `service_started`; docs/DESIGN.md §22).
 */
function readLinkTargets(scope: Scope, links: string[] | undefined, dependsOn: string[] | Record<string, unknown> | undefined): LinkTarget[] {
  const out: LinkTarget[] = [];
  const add = (service: string, alias: string | undefined, key: PropertyKey[], optional = false, condition?: Dependency['condition']): void => {
    const name = alias ?? service.replace(/[^a-zA-Z0-9]/g, '');
    if (!/^[a-zA-Z0-9]+$/.test(name)) scope.failKey(key, `"${alias ?? service}" is not a link alias (letters and digits only)`);
    const known = out.find((t) => t.service === service);
    if (known !== undefined) {
      if (condition !== undefined) known.condition = condition;
      return;
    }
    out.push({ service, alias: name, key, ...(optional ? { optional } : {}), ...(condition === undefined ? {} : { condition }) });
  };
  links?.forEach((text, i) => {
    const [service, alias, ...rest] = text.split(':');
    if (rest.length > 0 || !service) scope.failKey(['links', i], `"${text}" is not a link ("service" or "service:alias")`);
    add(service, alias, ['links', i]);
  });
  if (Array.isArray(dependsOn)) dependsOn.forEach((service, i) => add(service, undefined, ['depends_on', i], false, 'service_started'));
  else if (dependsOn !== undefined) {
    for (const [service, raw] of Object.entries(dependsOn)) {
      const spec = scope.attempt(() => scope.shape(['depends_on', service], DependsLong.nullable(), raw) ?? {}, {});
      if (spec.restart !== undefined) scope.reportKey(['depends_on', service, 'restart'], 'not supported: drover restarts each application on its own');
      add(service, undefined, ['depends_on', service], spec.required === false, spec.condition ?? 'service_started');
    }
  }
  return out;
}
