/**
 * drover-agent: wiring only (STYLE.md "Shape"). Reads agent.yml (`--config`), builds the
 * dependencies, starts the convergence loop, stops cleanly on SIGTERM/SIGINT. Exits
 * non-zero only here, for start-up faults, with a message that names the key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isDroverError } from '#common/errors.ts';
import { createLogger } from '#common/log.ts';
import type { NodeTransfer } from '#common/model.ts';
import { systemClock } from './clock.ts';
import { fingerprintOfPublicKey, loadAgentConfig, type AgentConfig } from './config.ts';
import { HttpControlChannel } from './control-channel.ts';
import { DockerRuntime } from './docker.ts';
import { Executor } from './execute.ts';
import { HealthMonitor } from './health/monitor.ts';
import { ConvergenceLoop } from './loop.ts';
import { loadOrCreateNodeUuid, readEra } from './node-identity.ts';
import { RestartLedger } from './restart-ledger.ts';
import { ZfsStore } from './zfs/zfs.ts';

function fail(message: string): never {
  process.stderr.write(`drover-agent: ${message}\n`);
  process.exit(2);
}

async function transferOf(config: AgentConfig, file: string): Promise<NodeTransfer> {
  const transfer: NodeTransfer = {};
  if (config.ssh) {
    let fingerprint = config.ssh.host_key_fingerprint;
    if (fingerprint === undefined && config.ssh.host_public_key_file !== undefined) {
      const keyFile = config.ssh.host_public_key_file;
      try {
        fingerprint = fingerprintOfPublicKey(await readFile(keyFile, 'utf8'));
      } catch (err) {
        fail(`${file}: ssh.host_public_key_file: ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    transfer.ssh = { host: config.address, port: config.ssh.port, user: config.ssh.user, host_key_fingerprint: fingerprint! };
  }
  if (config.tls) transfer.tls = { host: config.address, port: config.tls.port };
  return transfer;
}

async function main(): Promise<void> {
  let file: string | undefined;
  try {
    file = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true }).values.config;
  } catch (err) {
    fail((err as Error).message);
  }
  if (!file) fail('--config <agent.yml> is required');
  let config: AgentConfig;
  try {
    config = loadAgentConfig(file);
  } catch (err) {
    fail(isDroverError(err) ? err.message : String(err));
  }

  const log = createLogger('drover-agent');
  const uuidFile = config.node_uuid_file ?? join(config.state_dir, 'node-uuid');
  let uuid: string;
  try {
    uuid = await loadOrCreateNodeUuid(uuidFile);
  } catch (err) {
    fail(`${file}: ${config.node_uuid_file ? 'node_uuid_file' : 'state_dir'}: ${(err as Error).message}`);
  }
  const identity = {
    uuid,
    address: config.address,
    era: await readEra(),
    labels: config.labels,
    transfer: await transferOf(config, file),
  };

  const clock = systemClock;
  const store = new ZfsStore({ pool: config.pool, mountRoot: config.mount_root ?? null, log });
  const runtime = new DockerRuntime({ socketPath: config.docker_socket });
  const ledger = new RestartLedger(join(config.state_dir, 'restarts.json'));
  const executor = new Executor({ store, runtime, ledger, clock, log: log.child({ subsystem: 'execute' }), stopTimeoutSeconds: config.stop_timeout_seconds });
  let loop: ConvergenceLoop | null = null;
  const health = new HealthMonitor({ clock, runtime, log: log.child({ subsystem: 'health' }), onChange: () => loop?.wake() });
  loop = new ConvergenceLoop({
    identity,
    store,
    runtime,
    channel: new HttpControlChannel(config.control_url),
    executor,
    health,
    ledger,
    clock,
    log,
    pollIntervalMs: config.poll_interval_ms,
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'agent stopping');
    const timer = setTimeout(() => process.exit(1), 30_000);
    timer.unref();
    void loop!.stop().then(() => {
      log.info('agent stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({ node: uuid, address: config.address, pool: config.pool, control: config.control_url }, 'agent started');
  loop.start();
}

await main();
