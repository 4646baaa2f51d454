/**
 * drover-volume: the Docker volume plugin of one node. Wires only (docs/DESIGN.md §13): read flags,
 * open the mount state, build the driver and app, put them on the socket, stop on
 * SIGTERM/SIGINT — always removing the socket, which would otherwise stall dockerd.
 *
 *   drover-volume --name drover-n1 --control http://127.0.0.1:4523 \
 *     --node-uuid <uuid> | --node-uuid-file <file>  [--state-dir DIR] [--socket-dir DIR]
 *     [--mount-timeout SECONDS] [--docker-socket PATH] [--tls-ca FILE --tls-cert FILE --tls-key FILE] [--metrics-listen HOST:PORT]
 *
 * Every 10 s it checks its mount counts against its dockerd (a container stopped while the
 * plugin was down leaves counts Docker never unmounts) and renews the leases of the volumes
 * mounted here (they expire after LEASE_TTL_SECONDS).
 */
import { readTlsIdentity } from '#common/tls-client.ts';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '#common/log.ts';
import { METRICS_PORTS, MetricsListen, serveMetrics } from '#common/metrics-listener.ts';
import { Uuid } from '#common/model.ts';
import { HttpControl } from './control-http.ts';
import { anyHttps, parseControlEndpoints } from '#common/control-endpoints.ts';
import { buildApp } from './app.ts';
import { VolumeDriver } from './driver.ts';
import { MountStore } from './mount-store.ts';
import { SocketDockerVolumes } from './docker-volumes.ts';
import { DOCKER_PLUGIN_DIR, socketPathFor, startPluginServer, type PluginServer } from './plugin-server.ts';
import { PromPluginMetrics } from './prom-metrics.ts';

const RECONCILE_EVERY_MS = 10_000;

const log = createLogger('drover-volume');

function fail(message: string): never {
  log.fatal(message);
  process.stderr.write(`drover-volume: ${message}\n`);
  process.exit(2);
}

const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        name: { type: 'string' },
        control: { type: 'string' },
        'node-uuid': { type: 'string' },
        'node-uuid-file': { type: 'string' },
        'state-dir': { type: 'string' },
        'socket-dir': { type: 'string', default: DOCKER_PLUGIN_DIR },
        'mount-timeout': { type: 'string', default: '90' },
        'docker-socket': { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'metrics-listen': { type: 'string', default: `127.0.0.1:${METRICS_PORTS.plugin}` },
      },
      strict: true,
    });
  } catch (err) {
    return fail((err as Error).message);
  }
})();

const name = flags.name ?? fail('--name is required (e.g. --name drover-n1)');
// One control service or several, comma-separated: the plugin fails over between them (docs/DESIGN.md §29).
const control = (() => {
  try {
    return parseControlEndpoints(flags.control ?? fail('--control is required (e.g. --control http://127.0.0.1:4523)'), '--control');
  } catch (err) {
    return fail((err as Error).message);
  }
})();
const uuidText = flags['node-uuid'] ?? readUuidFile(flags['node-uuid-file']);
const parsedUuid = Uuid.safeParse(uuidText.trim());
if (!parsedUuid.success) fail(`node uuid "${uuidText.trim()}" is not a lower-case UUID`);
const nodeUuid = parsedUuid.data;
// The node's certificate (drover ca node NAME) for an https control service (docs/DESIGN.md §23).
const tlsFlags = [flags['tls-ca'], flags['tls-cert'], flags['tls-key']];
if (tlsFlags.some((f) => f !== undefined) && tlsFlags.some((f) => f === undefined)) fail('--tls-ca, --tls-cert and --tls-key go together');
if (anyHttps(control) && tlsFlags.some((f) => f === undefined)) fail('an https --control needs --tls-ca, --tls-cert and --tls-key (the node certificate: drover ca node NAME)');
const controlTls = (() => {
  try {
    return flags['tls-ca'] ? readTlsIdentity({ ca: flags['tls-ca'], cert: flags['tls-cert']!, key: flags['tls-key']! }) : undefined;
  } catch (err) {
    return fail((err as Error).message);
  }
})();
const mountTimeoutS = Number(flags['mount-timeout']);
if (!(mountTimeoutS > 0 && mountTimeoutS <= 110)) fail('--mount-timeout must be between 1 and 110 seconds (Docker gives a Mount 120 s)');
const metricsListen = flags['metrics-listen'];
if (!MetricsListen.safeParse(metricsListen).success) fail(`--metrics-listen "${metricsListen}" must be HOST:PORT, e.g. 127.0.0.1:${METRICS_PORTS.plugin}`);
const stateDir = flags['state-dir'] ?? `/var/lib/drover/volume-${name}`;
// The dockerd this plugin serves: --docker-socket, else DOCKER_HOST when it is a unix socket, else Docker's default.
const dockerSocket = flags['docker-socket'] ?? (process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : '/var/run/docker.sock');

function readUuidFile(file: string | undefined): string {
  if (!file) return fail('give --node-uuid or --node-uuid-file');
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`cannot read --node-uuid-file ${file}: ${(err as Error).message}`);
  }
}

/** The host's boot id; mount counts from another boot are void. */
function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

let server: PluginServer | undefined;
// The signal handlers come before the socket: a SIGTERM/SIGINT that arrived between the
// socket's creation and the handlers' killed the process with its socket left behind (found
// by CI), and a dead plugin socket stalls dockerd. A signal during start-up ends it at once,
// removing the socket if it is there (a start-up that hangs must not make it deaf to SIGTERM).
let stopWith: ((signal: string) => Promise<void>) | undefined;
const onSignal = (signal: string): void => {
  if (stopWith) return void stopWith(signal);
  log.info({ signal }, 'plugin stopped during start-up');
  server?.removeSocketSync();
  process.exit(0);
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
try {
  const socketPath = socketPathFor(name, flags['socket-dir']);
  const store = await MountStore.open(stateDir, { bootId: readBootId(), log });
  const docker = new SocketDockerVolumes(dockerSocket, name);
  const driver = new VolumeDriver({ control: new HttpControl({ baseUrl: control, ...(controlTls ? { tls: controlTls } : {}) }), store, nodeUuid, log, mountTimeoutMs: mountTimeoutS * 1000, docker });
  const metrics = new PromPluginMetrics();
  const app = buildApp({ driver, log, metrics });
  server = await startPluginServer(app, socketPath, log);
  const running = server;
  // /metrics behind the node's certificate when it has one (docs/DESIGN.md §25).
  const metricsListener = await serveMetrics(metricsListen, metrics, log, controlTls ?? null);
  process.on('exit', () => running.removeSocketSync());

  const timer = setInterval(() => void driver.reconcile(), RECONCILE_EVERY_MS);
  void driver.reconcile();
  log.info({ plugin: name, socketPath, nodeUuid, control, stateDir, dockerSocket, mounted: Object.keys(store.current.volumes).length }, 'plugin started');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'plugin stopping');
    clearInterval(timer);
    driver.stop();
    await running.close();
    await metricsListener?.close();
    await driver.settle(); // lease releases queued behind the last Unmounts
    log.info('plugin stopped');
    process.exit(0);
  };
  stopWith = stop;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; stopping');
    running.removeSocketSync();
    process.exit(1);
  });
} catch (err) {
  server?.removeSocketSync();
  fail((err as Error).message);
}
