/**
 * The control service's settings, from the command line (and DROVER_* environment
 * variables), checked with zod so a bad value stops start-up with a message that names it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';

export const USAGE = `usage: drover-control [--listen HOST:PORT] [--data-dir DIR] [--node-lease-ttl SECONDS] [--body-limit BYTES] [--replica-replace-after SECONDS]

  --listen        address of the API and the agent channel (default 0.0.0.0:4523; env DROVER_CONTROL_LISTEN)
  --data-dir      where the desired configuration is stored (default /var/lib/drover; env DROVER_DATA_DIR)
  --node-lease-ttl   seconds a report holds a node's lease; silent longer, the node is unknown
                  (default 10; agents report at least every poll_interval_ms, 3 s; --node-timeout is the old name)
  --node-down-grace  further seconds of silence after which an unknown node is down (default 30)
  --migration-stall  seconds without progress after which a move before handoff is given up (default 120)
  --handoff-deadline seconds after handoff within which the target must make the application
                  ready, else the move is rolled back to the source (default 120)
  --body-limit    largest request body in bytes (default 1048576; deploy allows 16 MiB)
  --compact-bytes the store's journal is folded into its snapshot file once it is larger than
                  the snapshot and at least this many bytes (default 262144)
  --replica-replace-after  seconds a replica's node may be silent before another node is
                  chosen to hold the standby copy (default 300; config key replica_replace_after_seconds)
  --secrets-key   the key file that seals secrets at rest, kept outside the data directory
                  (default <data-dir>.key beside it; created 0600 on first start; env DROVER_SECRETS_KEY)`;

const Listen = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:4523')
  .transform((text) => {
    const at = text.lastIndexOf(':');
    return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(at + 1)) };
  })
  .refine((l) => l.port <= 65535, 'the port must be at most 65535');

export const ControlConfig = z
  .object({
    listen: Listen,
    dataDir: z.string().min(1),
    nodeTimeoutMs: z.number().min(1000).max(3_600_000),
    nodeDownGraceMs: z.number().min(0).max(24 * 3_600_000),
    migrationStallMs: z.number().min(1000).max(24 * 3_600_000),
    handoffDeadlineMs: z.number().min(1000).max(24 * 3_600_000),
    bodyLimit: z.number().int().min(1024).max(64 * 1024 * 1024),
    compactBytes: z.number().int().min(0).max(1024 * 1024 * 1024),
    /** replica_replace_after_seconds, in ms (docs/DESIGN.md §17). */
    replicaReplaceAfterMs: z.number().min(1000).max(30 * 86_400_000),
    /** The secrets key file (docs/DESIGN.md §22); outside the data directory, so a copy of the store holds no key. */
    secretsKeyFile: z.string().min(1),
  })
  .strict();
export type ControlConfig = z.infer<typeof ControlConfig>;

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): ControlConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string' },
      'data-dir': { type: 'string' },
      'node-timeout': { type: 'string' },
      'node-lease-ttl': { type: 'string' },
      'node-down-grace': { type: 'string' },
      'migration-stall': { type: 'string' },
      'handoff-deadline': { type: 'string' },
      'body-limit': { type: 'string' },
      'compact-bytes': { type: 'string' },
      'replica-replace-after': { type: 'string' },
      'secrets-key': { type: 'string' },
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
    migrationStallMs: Number(values['migration-stall'] ?? 120) * 1000,
    handoffDeadlineMs: Number(values['handoff-deadline'] ?? 120) * 1000,
    bodyLimit: Number(values['body-limit'] ?? 1024 * 1024),
    compactBytes: Number(values['compact-bytes'] ?? 256 * 1024),
    replicaReplaceAfterMs: Number(values['replica-replace-after'] ?? env.DROVER_REPLICA_REPLACE_AFTER_SECONDS ?? 300) * 1000,
  });
}

export function droverVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}
