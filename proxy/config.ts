/**
 * drover-proxy's configuration, from three layers (later wins): a YAML file (`--config`,
 * or `DROVER_PROXY_CONFIG`), environment variables `DROVER_PROXY_<KEY>`, command-line flags
 * `--<key-with-dashes>`. Validated whole with zod; every error names where the key came from.
 *
 * ```yaml
 * control: https://127.0.0.1:4523   # or several: a list, or https://a:4523,https://b:4523 (docs/DESIGN.md §29)
 * control_ca: /etc/drover/ca.crt     # with https: the cluster CA and the node's certificate and key
 * control_cert: /etc/drover/node.crt
 * control_key: /etc/drover/node.key
 * node_uuid: 7f3c…                 # this node, as the agent registered it
 * listen_host: 127.0.0.11          # the node's address: every route listens here
 * mode: user                       # user | kernel (nftables DNAT in steady state)
 * hold_deadline_ms: 30000
 * service_subnet: 10.213.0.0/16    # applications reached by name (docs/DESIGN.md §21)
 * workers: 1                      # processes accepting new connections (uv engine; native: relay threads)
 * metrics_listen: 127.0.0.1:9525   # Prometheus /metrics (docs/DESIGN.md §25)
 * state_dir: /var/lib/drover/proxy  # the last route table, for a restart with no control service (§31)
 * ```
 */
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DroverError } from '#common/errors.ts';
import { anyHttps, ControlEndpoints } from '#common/control-endpoints.ts';
import { Ipv4, Uuid } from '#common/model.ts';
import { DEFAULT_SERVICE_SUBNET, ServiceSubnetText } from '#common/service-subnet.ts';
import { METRICS_PORTS, MetricsListen } from '#common/metrics-listener.ts';

export const ProxyConfig = z
  .object({
    /** One control service or several; the proxy fails over between them (docs/DESIGN.md §29). */
    control: ControlEndpoints,
    /** The cluster CA and the node's certificate and key (drover ca node NAME), for an https control service (docs/DESIGN.md §23). */
    control_ca: z.string().min(1).optional(),
    control_cert: z.string().min(1).optional(),
    control_key: z.string().min(1).optional(),
    node_uuid: Uuid,
    listen_host: Ipv4,
    mode: z.enum(['user', 'kernel']).default('user'),
    /** `auto` takes the C relay (`native`, docs/DESIGN.md §32) when it is built, else the libuv engine when this Node exposes it, else node:net. */
    engine: z.enum(['auto', 'uv', 'net', 'native']).default('auto'),
    hold_deadline_ms: z.number().int().min(100).max(3_600_000).default(30_000),
    connect_timeout_ms: z.number().int().min(10).max(120_000).default(2_000),
    retry_interval_ms: z.number().int().min(10).max(10_000).default(100),
    max_held_per_port: z.number().int().min(1).max(1_000_000).default(10_000),
    buffer_bytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(16_384),
    poll_wait_ms: z.number().int().min(100).max(300_000).default(25_000),
    /**
     * Processes accepting on the user-space listeners (the primary and workers − 1), for hosts
     * where new connections per second matter: about one core each (workers.ts), uv engine; with
     * `engine: native` the relay runs this many threads in one process instead (docs/DESIGN.md §32).
     */
    workers: z.number().int().min(1).max(64).default(1),
    /**
     * Where applications reached by name are served (docs/DESIGN.md §21): name slot N listens at
     * the subnet's address + N. Must equal the node's agent's `service_subnet`. The proxy routes
     * it to the host itself at start (`ip route replace local … dev lo`) and removes the route at stop.
     */
    service_subnet: ServiceSubnetText.default(DEFAULT_SERVICE_SUBNET),
    /** UDP: a client's session with no datagram either way for this long is closed. */
    udp_idle_timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Kernel mode: the nftables table this proxy owns (default `drover_proxy_<uuid prefix>`). */
    nat_table: z
      .string()
      .regex(/^drover_[a-z0-9_]{1,40}$/, 'must start with drover_ and hold only a-z, 0-9 and _')
      .optional(),
    /**
     * Where the proxy keeps its last route table (routes.json, 0600), so a restart with no
     * control service answering keeps routing (docs/DESIGN.md §31). Absent: memory only.
     */
    state_dir: z.string().min(1).optional(),
    /** HOST:PORT of the Prometheus /metrics listener (docs/DESIGN.md §25), apart from the proxied ports. */
    metrics_listen: MetricsListen.default(`127.0.0.1:${METRICS_PORTS.proxy}`),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!anyHttps(c.control)) return;
    for (const key of ['control_ca', 'control_cert', 'control_key'] as const) {
      if (c[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when control is https:// (the node certificate: drover ca node NAME)' });
    }
  });
export type ProxyConfig = z.infer<typeof ProxyConfig>;

const NUMERIC = new Set(['udp_idle_timeout_ms', 'hold_deadline_ms', 'connect_timeout_ms', 'retry_interval_ms', 'max_held_per_port', 'buffer_bytes', 'poll_wait_ms', 'workers']);
const KEYS = Object.keys(ProxyConfig.shape);

export interface ConfigInputs {
  argv: string[];
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
}

/** Reads the three layers and validates them; throws DROVER_CONFIG_INVALID naming each bad key. */
export function loadProxyConfig({ argv, env, readFile }: ConfigInputs): ProxyConfig {
  const options = Object.fromEntries([['config', { type: 'string' as const }], ...KEYS.map((k) => [k.replaceAll('_', '-'), { type: 'string' as const }])]);
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | undefined>;
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_INVALID', `command line: ${(err as Error).message}`, { cause: err });
  }
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const file = (flags.config as string | undefined) ?? env.DROVER_PROXY_CONFIG;
  if (file !== undefined) {
    let doc: unknown;
    try {
      doc = parseYaml(readFile(file)) ?? {};
    } catch (err) {
      throw new DroverError('DROVER_CONFIG_INVALID', `${file}: ${(err as Error).message}`, { detail: { file }, cause: err });
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DroverError('DROVER_CONFIG_INVALID', `${file}: must be a mapping of keys`);
    for (const [key, value] of Object.entries(doc)) {
      raw[key] = value;
      origin[key] = file;
    }
  }
  for (const key of KEYS) {
    const value = env[`DROVER_PROXY_${key.toUpperCase()}`];
    if (value === undefined) continue;
    raw[key] = NUMERIC.has(key) ? toNumber(value) : value;
    origin[key] = `environment DROVER_PROXY_${key.toUpperCase()}`;
  }
  for (const key of KEYS) {
    const value = flags[key.replaceAll('_', '-')];
    if (typeof value !== 'string') continue;
    raw[key] = NUMERIC.has(key) ? toNumber(value) : value;
    origin[key] = `--${key.replaceAll('_', '-')}`;
  }
  const parsed = ProxyConfig.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') return `${file ?? 'config'}: unknown key(s) ${i.keys.map((k) => `'${k}'`).join(', ')}`;
      const key = String(i.path[0] ?? '');
      return `${origin[key] ?? 'missing'}: ${key}: ${i.message}`;
    });
    throw new DroverError('DROVER_CONFIG_INVALID', problems.join('; '), { detail: { problems } });
  }
  return parsed.data;
}

/** Numbers from flags and the environment; a non-number stays a string so zod names it. */
function toNumber(text: string): number | string {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

/** The nftables table a node's proxy owns: one per node, so nodes sharing a host never collide. */
export function natTableName(config: Pick<ProxyConfig, 'nat_table' | 'node_uuid'>): string {
  return config.nat_table ?? `drover_proxy_${config.node_uuid.slice(0, 8)}`;
}
