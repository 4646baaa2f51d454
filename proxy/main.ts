/**
 * drover-proxy: wiring only (docs/DESIGN.md §13). Reads the configuration (flags, environment,
 * `--config proxy.yml`), builds the engine, the kernel rules (kernel mode) and the core,
 * follows the control service's routes, stops cleanly on SIGTERM/SIGINT. Exits non-zero only
 * here, for start-up faults, with a message that names the key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDroverError } from '#common/errors.ts';
import { readTlsIdentity, type TlsIdentity } from '#common/tls-client.ts';
import { createLogger } from '#common/log.ts';
import { serveMetrics } from '#common/metrics-listener.ts';
import { loadProxyConfig, natTableName, type ProxyConfig } from './config.ts';
import { createEngine } from './engine.ts';
import { createNftRules } from './nft-command.ts';
import { RoutingProxy, type NatRules } from './proxy.ts';
import { followRoutes } from './route-follower.ts';
import { localRoute } from './ip-command.ts';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { httpRouteSource } from './route-source.ts';
import { RouteCache, routeCachePath } from './route-cache.ts';
import { ClusteredProxy, ProxyWorkers, runWorker, SharingEngine, type FromWorker, type ToWorker } from './workers.ts';
import type { UvHandle } from './tcp-uv-binding.ts';
import { PromProxyMetrics } from './prom-metrics.ts';

/** Set on the processes the primary forks (workers.ts); never by an operator. */
const ROLE = 'DROVER_PROXY_ROLE';
const WORKER_BUFFER = 'DROVER_PROXY_WORKER_BUFFER_BYTES';

function fail(message: string): never {
  process.stderr.write(`drover-proxy: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let config: ProxyConfig;
  try {
    config = loadProxyConfig({ argv: process.argv.slice(2), env: process.env, readFile: (p) => readFileSync(p, 'utf8') });
  } catch (err) {
    fail(isDroverError(err) ? err.message : String(err));
  }
  // The node's certificate for an https control service (docs/DESIGN.md §23).
  let controlTls: TlsIdentity | undefined;
  try {
    controlTls = config.control_ca && config.control_cert && config.control_key ? readTlsIdentity({ ca: config.control_ca, cert: config.control_cert, key: config.control_key }) : undefined;
  } catch (err) {
    fail((err as Error).message);
  }
  const log = createLogger('drover-proxy');
  let engine;
  try {
    // The native relay runs `workers` threads in one process instead of N proxy processes.
    engine = createEngine(config.engine, { bufferBytes: config.buffer_bytes, threads: config.workers, connectTimeoutMs: config.connect_timeout_ms, log: log.child({ engine: config.engine }) });
  } catch (err) {
    fail(`engine: ${(err as Error).message}`);
  }
  if (config.workers > 1 && engine.name !== 'native') {
    try {
      engine = new SharingEngine(engine);
    } catch (err) {
      fail(`workers: ${(err as Error).message}`);
    }
  }

  let nat: NatRules | undefined;
  if (config.mode === 'kernel') {
    const table = natTableName(config);
    const rules = createNftRules({ table, listenHost: config.listen_host, log: log.child({ subsystem: 'nat' }) });
    if (!(await rules.available())) fail('mode: kernel needs nft (Debian package nftables)');
    try {
      await rules.clear(); // a table left by a proxy that died holds stale DNAT rules
    } catch (err) {
      fail(`mode: kernel: cannot manage nftables table ${table}: ${(err as Error).message}`);
    }
    nat = rules;
  }

  const options = {
    holdDeadlineMs: config.hold_deadline_ms,
    connectTimeoutMs: config.connect_timeout_ms,
    retryIntervalMs: config.retry_interval_ms,
    maxHeld: config.max_held_per_port,
    udpIdleTimeoutMs: config.udp_idle_timeout_ms,
  };
  const serviceSubnet = parseServiceSubnet(config.service_subnet)!;
  const route = localRoute(serviceSubnet);
  try {
    await route.add();
  } catch (err) {
    // Published ports work without it; only names do not. Said once, loudly.
    log.error({ err, serviceSubnet: serviceSubnet.cidr }, 'service subnet not routed here: applications are not reachable by name on this node');
  }
  const metrics = new PromProxyMetrics();
  const proxy = new RoutingProxy({ engine, listenHost: config.listen_host, serviceSubnet, nat, log, options, metrics });
  const counted = engine;
  metrics.readFrom(() => counted.counts());
  // /metrics behind the node's certificate when it has one (docs/DESIGN.md §25).
  const metricsListener = await serveMetrics(config.metrics_listen, metrics, log, controlTls ?? null);
  let workers: ProxyWorkers | null = null;
  if (engine instanceof SharingEngine) {
    workers = new ProxyWorkers({
      count: config.workers - 1,
      program: join(import.meta.dirname, '..', 'bin', 'drover-proxy.js'),
      execArgv: process.execArgv,
      env: { ...process.env, [ROLE]: 'worker', [WORKER_BUFFER]: String(config.buffer_bytes) },
      engine,
      listenHost: config.listen_host,
      serviceSubnet: serviceSubnet.cidr,
      options,
      log: log.child({ subsystem: 'workers' }),
    });
    try {
      await workers.start();
    } catch (err) {
      await workers.stop(0);
      fail(`workers: ${(err as Error).message}`);
    }
  }
  const abort = new AbortController();
  const applying = workers ? new ClusteredProxy(proxy, workers) : proxy;
  // The last table, saved where a restart finds it (docs/DESIGN.md §31): served at once, before any control service answers.
  const cache = config.state_dir === undefined ? null : new RouteCache(routeCachePath(config.state_dir), config.node_uuid, log.child({ subsystem: 'routes' }));
  const saved = cache === null ? null : await cache.load();
  if (saved !== null) {
    await applying.apply(saved);
    log.info({ version: saved.version, routes: saved.routes.length }, 'serving the saved route table until a control service answers');
  }
  const following = followRoutes({
    source: httpRouteSource(config.control, config.node_uuid, controlTls),
    proxy:
      cache === null
        ? applying
        : {
            get version() {
              return applying.version;
            },
            apply: async (table) => {
              await applying.apply(table);
              void cache.save(table);
            },
          },
    restored: saved !== null,
    nodeUuid: config.node_uuid,
    log: log.child({ subsystem: 'routes' }),
    signal: abort.signal,
    waitMs: config.poll_wait_ms,
  });
  const statusTimer = setInterval(() => {
    const s = proxy.status();
    log.info({ version: s.version, ports: s.ports.length, held: s.ports.reduce((n, p) => n + p.held, 0), ...s.counts }, 'proxy status');
  }, 60_000);
  statusTimer.unref();

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'proxy stopping');
    const hard = setTimeout(() => process.exit(1), 15_000);
    hard.unref();
    abort.abort();
    clearInterval(statusTimer);
    void following
      .then(() => Promise.all([proxy.stop(5_000), workers?.stop(5_000), metricsListener?.close()]))
      .then(() => route.remove().catch((err: unknown) => log.warn({ err }, 'service subnet route not removed')))
      .then(() => {
        log.info('proxy stopped');
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ node: config.node_uuid, listenHost: config.listen_host, control: config.control, mode: config.mode, engine: engine.name, workers: config.workers, workerPids: workers?.pids() ?? [] }, 'proxy started');
}

/** A forked worker (workers.ts): its configuration and sockets come over the IPC channel. */
function worker(): void {
  const log = createLogger('drover-proxy').child({ role: 'worker' });
  let engine;
  try {
    engine = createEngine('uv', { bufferBytes: Number(process.env[WORKER_BUFFER]) || undefined });
  } catch (err) {
    fail(`worker: ${(err as Error).message}`);
  }
  // SIGTERM from the operator's process group goes to the primary too, which stops us in order.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  runWorker({
    engine,
    log,
    exit: (code) => process.exit(code),
    channel: {
      send: (m: FromWorker) => process.send?.(m),
      onMessage: (handler) => process.on('message', (m, handle) => handler(m as ToWorker, handle as UvHandle | undefined)),
      onDisconnect: (handler) => process.on('disconnect', handler),
    },
  });
}

if (process.env[ROLE] === 'worker') worker();
else await main();
