/**
 * agent.yml: the agent's configuration, validated whole with zod before anything starts.
 * Every error names the file and the key (docs/DESIGN.md §11).
 *
 * ```yaml
 * control_url: https://127.0.0.1:4523        # or several: a list, or https://a:4523,https://b:4523 (docs/DESIGN.md §29)
 * control_tls: { ca_file: /etc/drover/ca.crt, cert_file: /etc/drover/node.crt, key_file: /etc/drover/node.key }
 * state_dir: /var/lib/drover/agent       # the node uuid is generated once and kept here
 * address: 127.0.0.11                    # this node's address: ports are published here
 * pool: drover-n1
 * docker_socket: /var/run/docker.sock
 * transport: ssh                         # ssh | tls
 * labels: { disk: ssd }
 * ssh: { port: 22, user: root, host_public_key_file: /etc/ssh/ssh_host_ed25519_key.pub }
 * poll_interval_ms: 3000
 * ```
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fenceProblem } from '#common/fence-timing.ts';
import { z } from 'zod';
import { METRICS_PORTS, MetricsListen } from '#common/metrics-listener.ts';
import { didYouMean } from '#common/did-you-mean.ts';
import { DroverError } from '#common/errors.ts';
import { anyHttps, ControlEndpoints } from '#common/control-endpoints.ts';
import { Ipv4, Labels, Port } from '#common/model.ts';
import { DEFAULT_SERVICE_SUBNET, ServiceSubnetText } from '#common/service-subnet.ts';

const Fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an OpenSSH SHA256 fingerprint (SHA256:…)');
const AbsolutePath = z.string().refine((p) => isAbsolute(p), 'must be an absolute path');

export const AgentConfig = z
  .object({
    /** One control service or several (a list, or comma-separated); the agent fails over between them (docs/DESIGN.md §29). */
    control_url: ControlEndpoints,
    /**
     * The cluster CA and this node's certificate and key (drover ca node NAME): the agent's
     * identity to an https control service (docs/DESIGN.md §23). Required with https.
     */
    control_tls: z.object({ ca_file: AbsolutePath, cert_file: AbsolutePath, key_file: AbsolutePath }).strict().optional(),
    /** Directory for the agent's own state; the node uuid lives in `<state_dir>/node-uuid`. */
    state_dir: AbsolutePath.default('/var/lib/drover/agent'),
    /** Overrides `<state_dir>/node-uuid`. */
    node_uuid_file: AbsolutePath.optional(),
    address: Ipv4,
    /** Where this node's proxy serves applications reached by name; must equal the proxy's (docs/DESIGN.md §21). */
    service_subnet: ServiceSubnetText.default(DEFAULT_SERVICE_SUBNET),
    pool: z.string().regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,200}$/, 'must be a zfs pool name'),
    /** Where datasets are mounted (`<mount_root>/<dataset_id>`); ZFS's default when absent. */
    mount_root: AbsolutePath.optional(),
    docker_socket: AbsolutePath.default('/var/run/docker.sock'),
    transport: z.enum(['ssh', 'tls']).default('ssh'),
    labels: Labels.default({}),
    ssh: z
      .object({
        port: Port.default(22),
        user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/).default('root'),
        host_key_fingerprint: Fingerprint.optional(),
        /** An OpenSSH public key file (`ssh-ed25519 AAAA… comment`); its fingerprint is reported. */
        host_public_key_file: AbsolutePath.optional(),
        /** This agent's key for sending migrations to other nodes' sshd (OpenSSH or PEM private key). */
        private_key_file: AbsolutePath.optional(),
      })
      .strict()
      .refine((s) => s.host_key_fingerprint !== undefined || s.host_public_key_file !== undefined, {
        message: 'needs host_key_fingerprint or host_public_key_file',
      })
      .optional(),
    tls: z
      .object({
        port: Port,
        /** The cluster CA and this node's certificate and key (PEM): the transfer endpoint is served and used only with all three. */
        ca_file: AbsolutePath.optional(),
        cert_file: AbsolutePath.optional(),
        key_file: AbsolutePath.optional(),
      })
      .strict()
      .refine((t) => [t.ca_file, t.cert_file, t.key_file].every((f) => f === undefined) || [t.ca_file, t.cert_file, t.key_file].every((f) => f !== undefined), {
        message: 'ca_file, cert_file and key_file go together',
      })
      .optional(),
    /** Migration tuning (convergence-agent/migration/README.md); defaults suit most hosts. */
    migration: z
      .object({
        /** A pre-copy round below this many bytes is small: cutover follows. */
        small_round_bytes: z.number().int().min(0).optional(),
        /** …or one that streamed for less than this. */
        small_round_ms: z.number().int().min(0).optional(),
        max_rounds: z.number().int().min(1).max(100).optional(),
        max_pre_copy_seconds: z.number().int().min(1).optional(),
        /** How long cutover waits for the proxies' acks of the hold. */
        ack_wait_ms: z.number().int().min(0).max(60_000).optional(),
      })
      .strict()
      .optional(),
    /**
     * Warm start (gate/README.md): a migration's container is started on the target before
     * handoff, behind a gate run by a static busybox from the host. Without one (or with
     * `enabled: false`) the container starts after handoff.
     */
    warm_start: z
      .object({ enabled: z.boolean().default(true), busybox: AbsolutePath.default('/bin/busybox') })
      .strict()
      .default({ enabled: true, busybox: '/bin/busybox' }),
    poll_interval_ms: z.number().int().min(100).max(600_000).default(3_000),
    /** Continuous replication: steps running at once across all (dataset, replica) pairs. */
    replication_concurrency: z.number().int().min(1).max(64).default(4),
    /** Grace period of a container stop before docker kills it. */
    stop_timeout_seconds: z.number().int().min(0).max(600).default(10),
    /**
     * Self-fencing (docs/DESIGN.md §18): with no acknowledged report for this long, the agent
     * stops its failover-enabled applications and sets their datasets read-only.
     */
    fence_after_ms: z.number().int().min(1000).default(6_000),
    /** The grace of a fencing stop before SIGKILL. */
    fence_stop_timeout_seconds: z.number().int().min(0).max(60).default(2),
    /** The control service's node lease TTL (`--node-lease-ttl`); fencing must end before TTL + the smallest failover margin. */
    lease_ttl_ms: z.number().int().min(1000).default(10_000),
    /**
     * The port of the logs endpoint on `address` (docs/DESIGN.md §27), served with the node's
     * certificate (control_tls) to the control service only; null: none. Without control_tls
     * there is none either.
     */
    logs_port: Port.nullable().default(4526),
    /** HOST:PORT of the Prometheus /metrics listener (docs/DESIGN.md §25), apart from everything else. */
    metrics_listen: MetricsListen.default(`127.0.0.1:${METRICS_PORTS.agent}`),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.transport === 'ssh' && !c.ssh) ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'is required when transport is ssh' });
    // The fence must be complete before the earliest failover the control service may make, on
    // clocks up to 5 % apart (docs/DESIGN.md §18, common/fence-timing.ts).
    const problem = fenceProblem({ fenceAfterMs: c.fence_after_ms, stopTimeoutMs: c.fence_stop_timeout_seconds * 1000 }, c.lease_ttl_ms);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['fence_after_ms'], message: `${problem}; lower it or raise lease_ttl_ms` });
    if (c.transport === 'tls' && !c.tls) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'is required when transport is tls' });
    if (anyHttps(c.control_url) && !c.control_tls) ctx.addIssue({ code: 'custom', path: ['control_tls'], message: 'is required when control_url is https:// (ca_file, cert_file, key_file: drover ca node NAME)' });
  });
export type AgentConfig = z.infer<typeof AgentConfig>;

/** Parses and validates agent.yml text; throws DROVER_CONFIG_INVALID naming the file and keys. */
export function parseAgentConfig(text: string, file: string): AgentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_INVALID', `${file}: not valid YAML: ${(err as Error).message}`, { detail: { file }, cause: err });
  }
  const parsed = AgentConfig.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      if (i.code === 'unrecognized_keys') {
        // At the top, a misspelt key gets the one it most likely meant (node_uuid → node_uuid_file).
        const meant = (k: string) => (key === '' ? didYouMean(k, Object.keys(AgentConfig.shape)) : undefined);
        return `${key ? `${key}: ` : ''}unknown key(s) ${i.keys.map((k) => `'${k}'${meant(k) === undefined ? '' : ` (did you mean '${meant(k)}'?)`}`).join(', ')}`;
      }
      if (i.code === 'invalid_type' && i.message.endsWith('received undefined')) return `${key || '(top level)'}: is required`;
      return `${key || '(top level)'}: ${i.message}`;
    });
    throw new DroverError('DROVER_CONFIG_INVALID', `${file}: ${problems.join('; ')}`, { detail: { file, problems } });
  }
  return parsed.data;
}

/** Reads and validates agent.yml. */
export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    throw new DroverError('DROVER_CONFIG_INVALID', `${file}: cannot be read: ${why}`, {
      detail: { file },
      cause: err,
    });
  }
  return parseAgentConfig(text, file);
}

/** The SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints it. */
export function fingerprintOfPublicKey(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob || !/^[A-Za-z0-9+/]+=*$/.test(blob)) {
    throw new DroverError('DROVER_CONFIG_INVALID', 'not an OpenSSH public key line (type, base64 key, comment)');
  }
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}
