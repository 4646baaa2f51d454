/**
 * The control service's settings, from the command line (and DROVER_* environment
 * variables), checked with zod so a bad value stops start-up with a message that names it.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_FAILOVER_MARGIN_MS, MIN_FAILOVER_MARGIN_MS } from '#common/fence-timing.ts';
import { METRICS_PORTS, MetricsListen } from '#common/metrics-listener.ts';

export const USAGE = `usage: drover-control --tls-ca FILE --tls-cert FILE --tls-key FILE [--revoked FILE] [--listen HOST:PORT] [--data-dir DIR] [--node-lease-ttl SECONDS] [--body-limit BYTES] [--replica-replace-after SECONDS]
       drover-control --insecure-plain-http --listen 127.0.0.1:PORT …

  --listen        address of the API and the agent channel (default 0.0.0.0:4523; env DROVER_CONTROL_LISTEN)
  --tls-ca        the cluster CA certificate: every client must present a certificate it signed
                  (env DROVER_TLS_CA; drover ca init)
  --tls-cert, --tls-key  this service's certificate and key (env DROVER_TLS_CERT, DROVER_TLS_KEY;
                  drover ca control ADDRESS…)
  --revoked       revoked serials, one a line (drover ca revoke writes revoked.txt); reloaded when
                  it changes and on SIGHUP (env DROVER_TLS_REVOKED)
  --insecure-plain-http  serve plain HTTP with no authentication: only on a loopback address,
                  for tests and development; every caller is a user
  --data-dir      where the desired configuration is stored (default /var/lib/drover; env DROVER_DATA_DIR)
  --node-lease-ttl   seconds a report holds a node's lease; silent longer, the node is unknown
                  (default 10; agents report at least every poll_interval_ms, 3 s; --node-timeout is the old name)
  --node-down-grace  further seconds of silence after which an unknown node is shown down (default 30)
  --failover-margin  seconds of silence beyond the lease TTL after which a node's replicated and
                  stateless applications fail over (default 1, at least 0.5; covers the agents'
                  self-fencing and clock-rate differences, docs/DESIGN.md §18); 'off': never
  --migration-stall  seconds without progress after which a move before handoff is given up (default 120)
  --handoff-deadline seconds after handoff within which the target must make the application
                  ready, else the move is rolled back to the source (default 120)
  --body-limit    largest request body in bytes (default 1048576; deploy allows 16 MiB)
  --compact-bytes the store's journal is folded into its snapshot file once it is larger than
                  the snapshot and at least this many bytes (default 262144)
  --replica-replace-after  seconds a replica's node may be silent before another node is
                  chosen to hold the standby copy (default 300; config key replica_replace_after_seconds)
  --metrics-listen  address of the Prometheus /metrics listener, separate from the API: HTTPS
                  with the --tls-* files (a user or drover-metrics client certificate scrapes);
                  http://HOST:PORT for plain HTTP, loopback only
                  (default 127.0.0.1:${METRICS_PORTS.control}; env DROVER_CONTROL_METRICS_LISTEN)
  --store         where the desired configuration lives: 'file' (default; in --data-dir, one
                  control service) or 'etcd' (several control services, one leader; docs/DESIGN.md §28)
  --etcd-endpoints  with --store etcd: the etcd members' client URLs, comma-separated
                  (http(s)://host:port; env DROVER_ETCD_ENDPOINTS)
  --etcd-ca, --etcd-cert, --etcd-key  TLS client certificate to etcd (all three, or none)
  --etcd-prefix   the keys' prefix in etcd (default /drover/)
  --leader-lease-ttl  seconds of the leader's etcd lease: a leader killed outright is replaced
                  after about this long (default 3: a failover in under 5 s; docs/DESIGN.md §28)
  --leader-renew-deadline  seconds after which a leader that could not renew stops acting
                  (default 2/3 of the TTL: it stops before its lease can expire)
  --advertise     the URL followers redirect writes to (default https://<listen address>, the
                  host name for 0.0.0.0)
  --identity      this control service's name in etcd (default <host name>:<pid>)
  --secrets-key   the key file that seals secrets at rest, kept outside the data directory
                  (default <data-dir>.key beside it; created 0600 on first start; env DROVER_SECRETS_KEY)
  --files-grace   seconds a stored config, secret or project file must go unnamed by every
                  application before it is removed (default 86400; swept hourly)`;

const Listen = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:4523')
  .transform((text) => {
    const at = text.lastIndexOf(':');
    return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(at + 1)) };
  })
  .refine((l) => l.port <= 65535, 'the port must be at most 65535');

/**
 * The leader's etcd lease (docs/DESIGN.md §28): a leader killed outright is replaced once it
 * expires, so a failover takes about this plus an election — under the 5 s target; the
 * leader stops acting after 2/3 of it without a renewal, a second before etcd can expire it.
 */
export const DEFAULT_LEADER_LEASE_TTL_SECONDS = 3;

/** A setting given in seconds and held in ms: its problems speak seconds, as the flag does. */
function seconds(min: number, max: number) {
  return z
    .number({ error: 'must be a number of seconds' })
    .min(min * 1000, `must be at least ${min} s`)
    .max(max * 1000, `must be at most ${max} s`);
}

/** The flag (without its dashes) each setting comes from, to name it in a refusal. */
const FLAG_OF: Record<string, string> = {
  listen: 'listen',
  dataDir: 'data-dir',
  nodeTimeoutMs: 'node-lease-ttl',
  nodeDownGraceMs: 'node-down-grace',
  failoverMarginMs: 'failover-margin',
  migrationStallMs: 'migration-stall',
  handoffDeadlineMs: 'handoff-deadline',
  bodyLimit: 'body-limit',
  compactBytes: 'compact-bytes',
  replicaReplaceAfterMs: 'replica-replace-after',
  metricsListen: 'metrics-listen',
  secretsKeyFile: 'secrets-key',
  filesGraceMs: 'files-grace',
};

/**
 * Every problem of a refused command line, each naming the flag it came from
 * (`node-lease-ttl: must be at least 1 s`), joined by "; ".
 */
export function configProblems(err: z.ZodError): string {
  return err.issues
    .map((issue) => {
      const [head, ...rest] = issue.path.map(String);
      const path = [FLAG_OF[head ?? ''] ?? head, ...rest].filter((p) => p !== undefined).join('.');
      return path === '' ? issue.message : `${path}: ${issue.message}`;
    })
    .join('; ');
}

export const ControlConfig = z
  .object({
    listen: Listen,
    dataDir: z.string().min(1),
    nodeTimeoutMs: seconds(1, 3600),
    nodeDownGraceMs: seconds(0, 86_400),
    /** Failover at lease TTL + this (ms); null: never (docs/DESIGN.md §18). */
    failoverMarginMs: seconds(MIN_FAILOVER_MARGIN_MS / 1000, 3600).nullable(),
    migrationStallMs: seconds(1, 86_400),
    handoffDeadlineMs: seconds(1, 86_400),
    bodyLimit: z.number({ error: 'must be a number of bytes' }).int('must be a whole number of bytes').min(1024, 'must be at least 1024 bytes').max(64 * 1024 * 1024, 'must be at most 64 MiB'),
    compactBytes: z.number({ error: 'must be a number of bytes' }).int('must be a whole number of bytes').min(0, 'must not be negative').max(1024 * 1024 * 1024, 'must be at most 1 GiB'),
    /** replica_replace_after_seconds, in ms (docs/DESIGN.md §17). */
    replicaReplaceAfterMs: seconds(1, 30 * 86_400),
    /** Mutual TLS (docs/DESIGN.md §23); null only with plainHttp. */
    tls: z
      .object({
        ca: z.string().min(1, 'goes with --tls-cert and --tls-key'),
        cert: z.string().min(1, 'goes with --tls-ca and --tls-key'),
        key: z.string().min(1, 'goes with --tls-ca and --tls-cert'),
        revoked: z.string().min(1).nullable(),
      })
      .strict()
      .nullable(),
    /** `--insecure-plain-http`: no TLS, no authentication; refused unless listen is a loopback address. */
    plainHttp: z.boolean(),
    /** HOST:PORT of /metrics (docs/DESIGN.md §25). */
    metricsListen: MetricsListen,
    /** The secrets key file (docs/DESIGN.md §22); outside the data directory, so a copy of the store holds no key. */
    secretsKeyFile: z.string().min(1),
    /** How long an unnamed file content is kept (docs/DESIGN.md §22). */
    filesGraceMs: seconds(0, 365 * 86_400),
    /** The store on etcd (docs/DESIGN.md §28); null: the file store in dataDir. */
    etcd: z
      .object({
        endpoints: z.array(z.string().regex(/^https?:\/\/[^\s/]+:\d{1,5}$/, 'each must be http(s)://HOST:PORT')).min(1, 'needs at least one URL (--etcd-endpoints)'),
        tls: z
          .object({
            ca: z.string().min(1, 'goes with --etcd-cert and --etcd-key'),
            cert: z.string().min(1, 'goes with --etcd-ca and --etcd-key'),
            key: z.string().min(1, 'goes with --etcd-ca and --etcd-cert'),
          })
          .strict()
          .nullable(),
        prefix: z.string().regex(/^\/([A-Za-z0-9._-]+\/)*$/, 'must start and end with /, e.g. /drover/'),
        leaseTtlSeconds: z.number().int().min(2).max(300),
        renewDeadlineMs: z.number().min(500),
        advertise: z.string().url().nullable(),
        identity: z.string().min(1).max(200),
      })
      .strict()
      .nullable(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.plainHttp && c.tls !== null) ctx.addIssue({ code: 'custom', path: ['insecure-plain-http'], message: 'goes with no --tls-* flag' });
    if (c.plainHttp && !isLoopback(c.listen.host)) {
      ctx.addIssue({ code: 'custom', path: ['insecure-plain-http'], message: `refused on ${c.listen.host}: plain HTTP (no authentication) is served only on a loopback address (127.0.0.0/8, ::1, localhost)` });
    }
    if (c.etcd && c.etcd.renewDeadlineMs >= c.etcd.leaseTtlSeconds * 1000) {
      ctx.addIssue({ code: 'custom', path: ['leader-renew-deadline'], message: `must be shorter than --leader-lease-ttl (${c.etcd.leaseTtlSeconds} s): a leader stops acting before its lease can expire` });
    }
    if (!c.plainHttp && c.tls === null) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'needs --tls-ca, --tls-cert and --tls-key (drover ca init; drover ca control ADDRESS…), or --insecure-plain-http on a loopback address' });
    }
  });
export type ControlConfig = z.infer<typeof ControlConfig>;

/** 127.0.0.0/8, ::1 or localhost: an address only this machine reaches. */
export function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost';
}

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): ControlConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string' },
      'data-dir': { type: 'string' },
      'node-timeout': { type: 'string' },
      'node-lease-ttl': { type: 'string' },
      'node-down-grace': { type: 'string' },
      'failover-margin': { type: 'string' },
      'migration-stall': { type: 'string' },
      'handoff-deadline': { type: 'string' },
      'body-limit': { type: 'string' },
      'compact-bytes': { type: 'string' },
      'replica-replace-after': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      revoked: { type: 'string' },
      'insecure-plain-http': { type: 'boolean' },
      'metrics-listen': { type: 'string' },
      'secrets-key': { type: 'string' },
      'files-grace': { type: 'string' },
      store: { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      'etcd-ca': { type: 'string' },
      'etcd-cert': { type: 'string' },
      'etcd-key': { type: 'string' },
      'etcd-prefix': { type: 'string' },
      'leader-lease-ttl': { type: 'string' },
      'leader-renew-deadline': { type: 'string' },
      advertise: { type: 'string' },
      identity: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const dataDir = values['data-dir'] ?? env.DROVER_DATA_DIR ?? '/var/lib/drover';
  return ControlConfig.parse({
    secretsKeyFile: values['secrets-key'] ?? env.DROVER_SECRETS_KEY ?? `${dataDir.replace(/\/+$/, '')}.key`,
    listen: values.listen ?? env.DROVER_CONTROL_LISTEN ?? '0.0.0.0:4523',
    dataDir,
    nodeTimeoutMs: Number(values['node-lease-ttl'] ?? values['node-timeout'] ?? 10) * 1000,
    nodeDownGraceMs: Number(values['node-down-grace'] ?? 30) * 1000,
    failoverMarginMs: values['failover-margin'] === 'off' ? null : Number(values['failover-margin'] ?? DEFAULT_FAILOVER_MARGIN_MS / 1000) * 1000,
    migrationStallMs: Number(values['migration-stall'] ?? 120) * 1000,
    handoffDeadlineMs: Number(values['handoff-deadline'] ?? 120) * 1000,
    bodyLimit: Number(values['body-limit'] ?? 1024 * 1024),
    compactBytes: Number(values['compact-bytes'] ?? 256 * 1024),
    replicaReplaceAfterMs: Number(values['replica-replace-after'] ?? env.DROVER_REPLICA_REPLACE_AFTER_SECONDS ?? 300) * 1000,
    tls: tlsOf(values, env),
    plainHttp: values['insecure-plain-http'] === true,
    metricsListen: values['metrics-listen'] ?? env.DROVER_CONTROL_METRICS_LISTEN ?? `127.0.0.1:${METRICS_PORTS.control}`,
    filesGraceMs: Number(values['files-grace'] ?? 86_400) * 1000,
    etcd: etcdOf(values, env),
  });
}

/** The etcd settings with --store etcd; null with the file store (etcd flags then refused). */
function etcdOf(values: Record<string, unknown>, env: NodeJS.ProcessEnv): ControlConfig['etcd'] {
  const store = (values.store as string | undefined) ?? env.DROVER_STORE ?? 'file';
  const given = ['etcd-endpoints', 'etcd-ca', 'etcd-cert', 'etcd-key', 'etcd-prefix', 'leader-lease-ttl', 'leader-renew-deadline', 'advertise', 'identity'].filter((k) => values[k] !== undefined);
  if (store !== 'etcd' && store !== 'file') throw new z.ZodError([{ code: 'custom', path: ['store'], message: `must be 'file' or 'etcd', not '${store}'`, input: store }]);
  if (store === 'file') {
    if (given.length > 0) throw new z.ZodError(given.map((k) => ({ code: 'custom' as const, path: [k], message: 'goes with --store etcd', input: values[k] })));
    return null;
  }
  const str = (k: string) => values[k] as string | undefined;
  const ttl = Number(str('leader-lease-ttl') ?? DEFAULT_LEADER_LEASE_TTL_SECONDS);
  const ca = str('etcd-ca');
  const cert = str('etcd-cert');
  const key = str('etcd-key');
  return {
    endpoints: (str('etcd-endpoints') ?? env.DROVER_ETCD_ENDPOINTS ?? '').split(',').map((e) => e.trim()).filter(Boolean),
    tls: ca === undefined && cert === undefined && key === undefined ? null : { ca: ca ?? '', cert: cert ?? '', key: key ?? '' },
    prefix: str('etcd-prefix') ?? '/drover/',
    leaseTtlSeconds: ttl,
    renewDeadlineMs: str('leader-renew-deadline') === undefined ? Math.round((ttl * 2000) / 3) : Number(str('leader-renew-deadline')) * 1000,
    advertise: str('advertise') ?? null,
    identity: str('identity') ?? `${hostname()}:${process.pid}`,
  };
}

/** The three TLS files, all or none (a part of them names what is missing). */
function tlsOf(values: Record<string, unknown>, env: NodeJS.ProcessEnv): ControlConfig['tls'] {
  const ca = (values['tls-ca'] as string | undefined) ?? env.DROVER_TLS_CA;
  const cert = (values['tls-cert'] as string | undefined) ?? env.DROVER_TLS_CERT;
  const key = (values['tls-key'] as string | undefined) ?? env.DROVER_TLS_KEY;
  const revoked = (values.revoked as string | undefined) ?? env.DROVER_TLS_REVOKED ?? null;
  if (ca === undefined && cert === undefined && key === undefined) return null;
  // Missing ones become '' and fail the schema, which names them.
  return { ca: ca ?? '', cert: cert ?? '', key: key ?? '', revoked };
}

export function droverVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}
