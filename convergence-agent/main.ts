/**
 * drover-agent: wiring only (docs/DESIGN.md §13). Reads agent.yml (`--config`), builds the
 * dependencies, starts the convergence loop, stops cleanly on SIGTERM/SIGINT. Exits
 * non-zero only here, for start-up faults, with a message that names the key.
 */
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { AppFiles } from './files/app-files.ts';
import { HttpFileSource } from './files/file-source.ts';
import { ensureSecretsTmpfs } from './files/secrets-tmpfs.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isDroverError } from '#common/errors.ts';
import { createLogger } from '#common/log.ts';
import { serveMetrics } from '#common/metrics-listener.ts';
import { LogsServer } from './logs/logs-server.ts';
import type { NodeIdentity } from './report.ts';
import { missingNodeFlags } from '#common/node-flags.ts';
import type { NodeTransfer } from '#common/model.ts';
import { systemClock } from '#common/clock.ts';
import { readTlsIdentity, type TlsIdentity as ControlTls } from '#common/tls-client.ts';
import { fingerprintOfPublicKey, loadAgentConfig, type AgentConfig } from './config.ts';
import { HttpControlChannel, type ControlChannel } from './control-channel.ts';
import { DockerRuntime } from './docker.ts';
import { Executor } from './execute.ts';
import { Gates } from './gate/gates.ts';
import { execaRunner } from './zfs/command.ts';
import { HealthMonitor } from './health/monitor.ts';
import { ConvergenceLoop } from './loop.ts';
import { DesiredCache } from './desired-cache.ts';
import { FenceWatchdog } from './fence.ts';
import { WatchdogProcess } from './fence-watchdog/arm.ts';
import { loadOrCreateNodeUuid, readEra } from './node-identity.ts';
import { RestartLedger } from './restart-ledger.ts';
import { ZfsStore } from './zfs/zfs.ts';
import { MigrationJobs } from './migration/jobs.ts';
import { MoveStep } from './replication/move-step.ts';
import { ReplicationScheduler } from './replication/scheduler.ts';
import { ReplicationReporter } from './replication-reporter.ts';
import { HttpMigrationControl } from './migration/migration-control.ts';
import { TransportPeers } from './migration/peers.ts';
import { DEFAULT_TUNING, type MigrationTuning } from './migration/source-job.ts';
import { LocalPeer } from './transfer/local-peer.ts';
import { Replicator } from './transfer/replicate.ts';
import type { TlsIdentity } from './transfer/tls-certs.ts';
import { TransferServer } from './transfer/tls-server.ts';
import { DEFAULT_PUMP_PATH, findNativePump } from './transfer/native-pump.ts';
import { PromAgentMetrics } from './prom-metrics.ts';
import { mountingContainers, SnapshotFreezer } from './replication/snapshot-freeze.ts';
import { primaryIntervals } from './metrics.ts';

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
    transfer.ssh = {
      host: config.address,
      port: config.ssh.port,
      user: config.ssh.user,
      host_key_fingerprint: fingerprint!,
      // Senders run `zfs receive` into this pool over ssh (migration/peers.ts).
      pool: config.pool,
      ...(config.mount_root ? { mount_root: config.mount_root } : {}),
    };
  }
  if (config.tls) transfer.tls = { host: config.address, port: config.tls.port };
  return transfer;
}

/** The cluster identity for the tls transport, when agent.yml names its three files. */
function tlsIdentityOf(config: AgentConfig): (() => Promise<TlsIdentity>) | null {
  const tls = config.tls;
  if (!tls?.ca_file || !tls.cert_file || !tls.key_file) return null;
  let loaded: Promise<TlsIdentity> | null = null;
  return () =>
    (loaded ??= Promise.all([readFile(tls.ca_file!, 'utf8'), readFile(tls.cert_file!, 'utf8'), readFile(tls.key_file!, 'utf8')]).then(([ca, cert, key]) => ({ ca, cert, key })));
}

/**
 * The deadline of one report attempt. With several control services, a hung one (not a dead
 * one: that refuses at once) must cost less than the fence (docs/DESIGN.md §18, §29): after a
 * third of `fence_after_ms` the report gives up and the next goes to the next service, in time
 * to renew the lease there. With one, the client's default (10 s): there is nowhere else to go.
 */
function reportDeadlineMs(config: AgentConfig): number | undefined {
  return config.control_url.length > 1 ? Math.max(1_000, Math.floor(config.fence_after_ms / 3)) : undefined;
}

function tuningOf(config: AgentConfig): MigrationTuning {
  const m = config.migration ?? {};
  return {
    ...DEFAULT_TUNING,
    ...(m.small_round_bytes === undefined ? {} : { smallBytes: m.small_round_bytes }),
    ...(m.small_round_ms === undefined ? {} : { smallMs: m.small_round_ms }),
    ...(m.max_rounds === undefined ? {} : { maxRounds: m.max_rounds }),
    ...(m.max_pre_copy_seconds === undefined ? {} : { maxMs: m.max_pre_copy_seconds * 1000 }),
    ...(m.ack_wait_ms === undefined ? {} : { ackWaitMs: m.ack_wait_ms }),
  };
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
  const missing = missingNodeFlags(join(import.meta.dirname, '..', 'bin', 'drover-agent.js'));
  if (missing.length > 0) {
    log.warn({ missing }, 'node runs without the flags on bin/drover-agent.js\'s first line: a transfer takes up to twice the CPU; start bin/drover-agent.js itself, or pass them to node');
  }
  const uuidFile = config.node_uuid_file ?? join(config.state_dir, 'node-uuid');
  let uuid: string;
  try {
    uuid = await loadOrCreateNodeUuid(uuidFile);
  } catch (err) {
    fail(`${file}: ${config.node_uuid_file ? 'node_uuid_file' : 'state_dir'}: ${(err as Error).message}`);
  }
  const identity: NodeIdentity = {
    uuid,
    address: config.address,
    era: await readEra(),
    labels: config.labels,
    transfer: await transferOf(config, file),
  };

  // The node's certificate for the control service (docs/DESIGN.md §23); read once, at start.
  let controlTls: ControlTls | undefined;
  try {
    controlTls = config.control_tls ? readTlsIdentity({ ca: config.control_tls.ca_file, cert: config.control_tls.cert_file, key: config.control_tls.key_file }) : undefined;
  } catch (err) {
    fail(`${file}: control_tls: ${(err as Error).message}`);
  }

  const clock = systemClock;
  const metrics = new PromAgentMetrics();
  const store = new ZfsStore({ pool: config.pool, mountRoot: config.mount_root ?? null, log });
  const runtime = new DockerRuntime({ socketPath: config.docker_socket });
  const ledger = new RestartLedger(join(config.state_dir, 'restarts.json'));
  let loop: ConvergenceLoop | null = null;
  const tlsIdentity = tlsIdentityOf(config);
  const peers = new TransportPeers({
    transport: config.transport,
    ...(config.ssh?.private_key_file ? { sshPrivateKey: () => readFile(config.ssh!.private_key_file!) } : {}),
    ...(tlsIdentity ? { tlsIdentity } : {}),
    log: log.child({ subsystem: 'transfer' }),
  });
  // The agent's channel to the control service; a delivered full report also delivers its replication status (§38).
  const control = new HttpControlChannel(config.control_url, reportDeadlineMs(config), controlTls);
  let replicationReporter: ReplicationReporter | null = null;
  const channel: ControlChannel = {
    report: async (report) => {
      const answer = await control.report(report);
      replicationReporter?.reported(report.replication_seq ?? null);
      return answer;
    },
    replicationReport: (report, signal) => control.replicationReport(report, signal),
    waitForDesired: (nodeUuid, after, waitMs, signal) => control.waitForDesired(nodeUuid, after, waitMs, signal),
  };
  // The opt-in freeze during interval snapshots (docs/DESIGN.md §47); thaws what a previous agent left frozen.
  const freezer = new SnapshotFreezer({
    runtime,
    containersOf: mountingContainers({
      mountpointOf: async (datasetId) => (await store.getDataset(datasetId))?.mountpoint ?? null,
      listContainers: () => runtime.listContainers(uuid),
    }),
    journal: join(config.state_dir, 'snapshot-freeze.json'),
    log: log.child({ subsystem: 'snapshot-freeze' }),
  });
  await freezer.recover().catch((err: unknown) => log.error({ err }, 'snapshot freeze journal not read: nothing thawed from it'));
  const replicator = new Replicator({ store, stateDir: join(config.state_dir, 'replication'), log, clock, metrics, transport: config.transport });
  const replication = new ReplicationScheduler({
    nodeUuid: uuid,
    clock,
    log: log.child({ subsystem: 'replication' }),
    store,
    replicate: (options) => replicator.replicate(options),
    // The step ends once the replica holds its snapshot; the holds move after (replication/DESIGN.md).
    settle: (peer, datasetId) => replicator.settle(peer, datasetId),
    peerSnapshots: (peer, datasetId) => replicator.peerSnapshots(peer, datasetId),
    peers,
    concurrency: config.replication_concurrency,
    // A step's end, or a pair's change of state, is reported at once, alone (docs/DESIGN.md §38).
    onChange: () => replicationReporter?.changed(),
    freeze: (datasetId, snapshot) => freezer.around(datasetId, snapshot),
  });
  replicationReporter = new ReplicationReporter({
    identity,
    status: () => replication.statusReport(),
    send: (report, signal) => channel.replicationReport(report, signal),
    clock,
    log: log.child({ subsystem: 'replication-report' }),
  });
  const moveStep = new MoveStep({
    scheduler: replication,
    replicate: (options) => replicator.replicate(options),
    peerSnapshots: (peer, datasetId) => replicator.peerSnapshots(peer, datasetId),
    store,
    peers,
    log: log.child({ subsystem: 'replication' }),
  });
  metrics.readFrom({ statuses: () => replication.statuses(), intervals: () => primaryIntervals(loop?.currentDesired ?? null, uuid) });
  const migrations = new MigrationJobs({
    nodeUuid: uuid,
    control: new HttpMigrationControl(config.control_url, undefined, controlTls),
    clock,
    log: log.child({ subsystem: 'migration' }),
    datasets: store,
    runtime,
    // A move of a replicated dataset first waits for its running replication steps, then
    // sends with -I and prunes by its grid; to a node with no copy it sends the replicas'
    // base first (replication/DESIGN.md "Moves").
    replicate: (options) => moveStep.replicate(options),
    prepareReceive: (peer, datasetId) => replicator.prepareReceive(peer, datasetId),
    settle: (peer, datasetId) => replicator.settle(peer, datasetId),
    peers,
    tuning: tuningOf(config),
    stopTimeoutSeconds: config.stop_timeout_seconds,
    onChange: () => loop?.wake(),
    metrics,
  });
  let transferServer: TransferServer | null = null;
  if (config.tls && tlsIdentity) {
    const pump = findNativePump();
    if (pump) log.info({ pump }, 'tls transfers use the native data pump');
    else log.warn({ expected: DEFAULT_PUMP_PATH }, 'the native data pump is not built (make -C native): tls transfers stream through this process instead, which is slower');
    transferServer = new TransferServer({ peer: new LocalPeer(uuid, store), identity: await tlsIdentity(), host: config.address, port: config.tls.port, log, pump });
    try {
      await transferServer.listen();
    } catch (err) {
      fail(`${file}: tls.port: cannot listen on ${config.address}:${config.tls.port}: ${(err as Error).message}`);
    }
  }
  let gates: Gates | null = null;
  if (config.warm_start.enabled) {
    const support = await Gates.detect(config.warm_start.busybox);
    if (support.ok) {
      gates = new Gates({ root: join(config.state_dir, 'gates'), shell: config.warm_start.busybox, runner: execaRunner, log: log.child({ subsystem: 'gate' }) });
    } else {
      log.warn({ reason: support.reason }, 'warm start off: a migration starts its container after handoff');
    }
  }
  // Files that travel with applications (docs/DESIGN.md §22); secrets only on a tmpfs.
  const fileRoots = { filesRoot: join(config.state_dir, 'files'), secretsRoot: join(config.state_dir, 'secrets') };
  // The tmpfs is mounted for the first secret, so a node with none has no mount to leave behind.
  const mountSecrets = async (): Promise<void> => {
    if (await ensureSecretsTmpfs(fileRoots.secretsRoot, execaRunner)) log.info({ dir: fileRoots.secretsRoot }, 'secrets tmpfs mounted');
  };
  const files = new AppFiles({ ...fileRoots, source: new HttpFileSource(config.control_url, uuid, undefined, controlTls), log: log.child({ subsystem: 'files' }), mountSecrets });
  const executor = new Executor({
    store,
    runtime,
    ledger,
    clock,
    log: log.child({ subsystem: 'execute' }),
    stopTimeoutSeconds: config.stop_timeout_seconds,
    migrations,
    nodeUuid: uuid,
    gates,
    metrics,
    files,
  });
  const health = new HealthMonitor({ clock, runtime, log: log.child({ subsystem: 'health' }), onChange: (id, state) => loop?.healthChanged(id, state.status), metrics });
  const fence = new FenceWatchdog({
    clock,
    runtime,
    setReadonly: (id, readonly) => store.setReadonly(id, readonly),
    log: log.child({ subsystem: 'fence' }),
    nodeUuid: uuid,
    desired: () => loop?.currentDesired ?? null,
    fenceAfterMs: config.fence_after_ms,
    stopTimeoutSeconds: config.fence_stop_timeout_seconds,
    // The same fence from outside this process: it holds when the agent is paused (docs/DESIGN.md §18).
    outside: new WatchdogProcess({
      runner: execaRunner,
      program: join(import.meta.dirname, '..', 'bin', 'drover-fence-watchdog.js'),
      args: [
        '--docker-socket', config.docker_socket,
        '--pool', config.pool,
        ...(config.mount_root ? ['--mount-root', config.mount_root] : []),
        '--node-uuid', uuid,
        '--stop-timeout-seconds', String(config.fence_stop_timeout_seconds),
      ],
      log: log.child({ subsystem: 'fence' }),
    }),
  });
  const desiredCache = new DesiredCache(join(config.state_dir, 'desired.json'), uuid, log.child({ subsystem: 'desired-cache' }), () => clock.now());
  loop = new ConvergenceLoop({
    identity,
    serviceSubnet: parseServiceSubnet(config.service_subnet)!,
    store,
    runtime,
    channel,
    executor,
    health,
    ledger,
    clock,
    log,
    pollIntervalMs: config.poll_interval_ms,
    migrations,
    replication,
    gates,
    fence,
    metrics,
    fileRoots,
    desiredCache,
  });
  // The view saved by the last run (docs/DESIGN.md §29): with no control service answering,
  // the node is kept as it says; the first answer replaces it.
  const saved = await desiredCache.load();
  if (saved !== null) {
    loop.restoreDesired(saved.desired);
    log.info({ version: saved.desired.version, savedAgoMs: clock.now() - saved.savedAt, applications: saved.desired.applications.length }, 'saved desired configuration restored');
  }
  // /metrics behind the node's certificate when it has one (docs/DESIGN.md §25).
  const metricsListener = await serveMetrics(config.metrics_listen, metrics, log, controlTls ?? null);
  // Application logs for the control service (docs/DESIGN.md §27); a port taken is no reason not to run.
  let logsServer: LogsServer | null = null;
  if (controlTls && config.logs_port !== null) {
    const server = new LogsServer({ identity: controlTls, host: config.address, port: config.logs_port, source: (app, options) => runtime.logs(uuid, app, options), log: log.child({ subsystem: 'logs' }) });
    try {
      identity.logs = { port: await server.listen() };
      logsServer = server;
    } catch (err) {
      log.warn({ err, port: config.logs_port }, 'logs endpoint not served: drover logs cannot reach this node');
    }
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'agent stopping');
    const timer = setTimeout(() => process.exit(1), 30_000);
    timer.unref();
    void loop!
      .stop()
      .then(() => Promise.all([migrations.stop(), replication.stop(), fence.stop(), replicationReporter!.stop()]))
      .then(() => freezer.close())
      .then(() => desiredCache.settled())
      .then(() => transferServer?.close())
      .then(() => metricsListener?.close())
      .then(() => logsServer?.close())
      .then(() => {
      log.info('agent stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({ node: uuid, address: config.address, pool: config.pool, control: config.control_url }, 'agent started');
  loop.start();
  fence.start();
}

await main();
