import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { systemClock } from '#common/clock.ts';
import { pluginSocketDir } from './netns.ts';
import { isAlive, ownedPid, processesMentioning, terminate } from './processes.ts';
import { tail } from './readiness.ts';
import { SYSTEM_PATH } from './run.ts';
import { controlUrl, controlUrls, etcdEndpoints, SERVICE_KINDS, serviceSpecs, servicesDir, type ServiceKind, type ServiceSpec } from './services-render.ts';
import { readClusterState } from './state.ts';
import { ensureClusterCertificates, operatorTls } from './certs.ts';
import { stopPrometheus } from './prometheus.ts';
import type { LocalCluster } from './types.ts';

/**
 * drover's own processes on a local cluster (docs/DESIGN.md §10): one control service, and per
 * node an agent, a proxy and a volume plugin — the real programs (`bin/drover-*.js`),
 * detached from the command that started them, each with a pid file and a log under
 * `<root>/services/` (services-render.ts has the layout).
 *
 * `startServices` is idempotent: it starts only what is not running. `stopServices` ends
 * them plugins first (each removes its socket), then proxies, agents and the control
 * service, by pid file and — for a run that crashed — by their paths on command lines.
 */

const REPO = resolve(import.meta.dirname, '..');
const READY_MS = { etcd: 60_000, control: 30_000, agent: 120_000, proxy: 60_000, plugin: 30_000 } as const;

export interface ServiceStatus {
  name: string;
  kind: ServiceKind;
  node: number | null;
  pid: number | null;
  logFile: string;
}

export interface StartOptions {
  log?: Logger;
  /** pino level of the services' logs (default info, or $DROVER_SERVICES_LOG_LEVEL). */
  logLevel?: string;
}

/** Which of the cluster's processes run now (pid null: not running). */
export function servicesStatus(cluster: LocalCluster): ServiceStatus[] {
  const needle = servicesDir(cluster.root) + '/';
  return serviceSpecs(cluster).map((s) => ({ name: s.name, kind: s.kind, node: s.node, pid: ownedPid(s.pidFile, needle), logFile: s.logFile }));
}

/**
 * Starts whatever of the cluster's processes is not running: the etcd members and control
 * services first, until they answer; then the agents, proxies and plugins together, since each
 * needs only the control service, and waits until every node has reported, every proxy polls
 * routes and every plugin socket answers (one kind after another, their start-ups would add
 * up). Resolves with the control service's URL. Throws
 * DROVER_CLUSTER_DAEMON_FAILED, with the tail of the process's log, when one does not
 * become ready.
 */
export async function startServices(cluster: LocalCluster, options: StartOptions = {}): Promise<string> {
  const log = (options.log ?? silentLogger()).child({ cluster: cluster.name });
  const dir = servicesDir(cluster.root);
  await mkdir(dir, { recursive: true });
  const url = controlUrl(cluster);
  await ensureClusterCertificates(cluster);
  const specs = serviceSpecs(cluster);
  const level = options.logLevel ?? process.env.DROVER_SERVICES_LOG_LEVEL ?? 'info';
  const of = (kind: ServiceKind) => specs.filter((s) => s.kind === kind);

  const controls = of('control');
  const urls = controlUrls(cluster);
  for (const [j, control] of controls.entries()) {
    if (ownedPid(control.pidFile, dir + '/') === null && (await httpOk(cluster, `${urls[j]}/v1/version`))) {
      throw new DroverError('DROVER_CLUSTER_PORT_IN_USE', `something else answers on ${urls[j]} (the address of ${control.name} of cluster '${cluster.name}')`, {
        detail: { url: urls[j] },
      });
    }
  }
  // Several control services (docs/DESIGN.md §31): their etcd members first, each until it is healthy.
  const etcd = of('etcd');
  if (etcd.length > 0) await startAll(etcd, dir, level, log, async () => (await etcdHealth(cluster)).every(Boolean));
  await startAll(controls, dir, level, log, async () => (await Promise.all(urls.map((u) => httpOk(cluster, `${u}/v1/version`)))).every(Boolean));

  const perNode: Array<{ specs: ServiceSpec[]; ready: () => Promise<boolean> }> = [
    { specs: of('agent'), ready: async () => (await knownNodes(url, cluster)) === cluster.nodes.length },
    { specs: of('proxy'), ready: async () => (await liveProxies(url, cluster)) === cluster.nodes.length },
    { specs: of('plugin'), ready: async () => (await Promise.all(cluster.nodes.map((n) => socketAnswers(pluginSocket(cluster, n))))).every(Boolean) },
  ];
  const spawned: Array<Array<{ spec: ServiceSpec; pid: number }>> = [];
  for (const kind of perNode) spawned.push(await spawnAll(kind.specs, dir, level, log));
  // The first kind that fails ends the others' waits too: its error is the one thrown.
  const failed = { now: false };
  await Promise.all(
    perNode.map(({ specs, ready }, i) =>
      waitReady(specs, spawned[i]!, ready, failed).catch((err: unknown) => {
        failed.now = true;
        throw err;
      }),
    ),
  );
  log.info({ url }, 'drover services up');
  return url;
}

/**
 * Stops every process of the cluster under `root`, plugins first, control last; then any
 * process still naming `<root>/services/` (a crashed run's); then plugin sockets nothing
 * answers on. Idempotent; does nothing when none of them runs.
 */
export async function stopServices(root: string, log: Logger = silentLogger()): Promise<void> {
  const dir = servicesDir(root);
  const needle = dir + '/';
  await stopPrometheus(root, log);
  const pidFiles = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.pid'));
  for (const kind of SERVICE_KINDS) {
    const mine = pidFiles.filter((f) => f === `${kind}.pid` || f.endsWith(`-${kind}.pid`));
    await Promise.all(
      mine.map(async (file) => {
        const pid = ownedPid(join(dir, file), needle);
        if (pid !== null && !(await terminate(pid, 15_000))) log.warn({ pid, file }, 'service did not exit');
        await rm(join(dir, file), { force: true });
      }),
    );
  }
  const strays = processesMentioning([needle]);
  if (strays.length > 0) log.warn({ strays }, 'ending leftover drover processes');
  await Promise.all(strays.map((pid) => terminate(pid, 5_000)));
  const cluster = await readClusterState(root).catch(() => null);
  for (const node of cluster?.nodes ?? []) await removeDeadSocket(pluginSocket(cluster!, node));
}

/** Node `node`'s plugin socket as the root namespace sees it (an isolated node's is in its own directory). */
export function pluginSocket(cluster: Pick<LocalCluster, 'name' | 'isolated'>, node: Pick<LocalCluster['nodes'][number], 'index' | 'pluginName'>): string {
  return join(pluginSocketDir(cluster.name, node.index, cluster.isolated === true), `${node.pluginName}.sock`);
}

/** Nodes of the cluster the control service lists as `known`; 0 when it does not answer. */
export async function knownNodes(url: string, cluster: LocalCluster): Promise<number> {
  const nodes = (await getJson(cluster, `${url}/v1/state/nodes`, 3_000, controlUrls(cluster))) as Array<{ uuid: string; state: string }> | null;
  if (!Array.isArray(nodes)) return 0;
  return cluster.nodes.filter((n) => nodes.some((s) => s.uuid === n.uuid && s.state === 'known')).length;
}

/** The control service's view of each node: 'known', 'unknown', or null (not registered, or no answer). */
export async function nodeStates(cluster: LocalCluster): Promise<Map<string, string | null>> {
  const nodes = (await getJson(cluster, `${controlUrl(cluster)}/v1/state/nodes`, 3_000, controlUrls(cluster))) as Array<{ uuid: string; state: string }> | null;
  return new Map(cluster.nodes.map((n) => [n.uuid, (Array.isArray(nodes) ? nodes.find((s) => s.uuid === n.uuid)?.state : null) ?? null]));
}

async function liveProxies(url: string, cluster: LocalCluster): Promise<number> {
  const acks = (await getJson(cluster, `${url}/v1/drover/routes/acks?version=0`, 3_000, controlUrls(cluster))) as { proxies?: Array<{ node_uuid: string; live: boolean }> } | null;
  return cluster.nodes.filter((n) => acks?.proxies?.some((p) => p.node_uuid === n.uuid && p.live)).length;
}

/** Starts one kind of service, then waits until `ready` says that kind is up. */
async function startAll(specs: ServiceSpec[], dir: string, level: string, log: Logger, ready: () => Promise<boolean>): Promise<void> {
  await waitReady(specs, await spawnAll(specs, dir, level, log), ready, { now: false });
}

/** Spawns each of `specs` that is not running (its files written first); returns what it started. */
async function spawnAll(specs: ServiceSpec[], dir: string, level: string, log: Logger): Promise<Array<{ spec: ServiceSpec; pid: number }>> {
  const started: Array<{ spec: ServiceSpec; pid: number }> = [];
  for (const spec of specs) {
    if (ownedPid(spec.pidFile, dir + '/') !== null) continue;
    for (const [path, content] of Object.entries(spec.files)) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    }
    const pid = spawnService(spec, level);
    await writeFile(spec.pidFile, `${pid}\n`);
    log.info({ service: spec.name, pid }, 'service started');
    started.push({ spec, pid });
  }
  return started;
}

/**
 * Polls `ready` every 200 ms until it holds; throws DROVER_CLUSTER_DAEMON_FAILED when one of
 * `started` exited or the kind's deadline passed. Gives up quietly once `stop.now` is set
 * (another kind failed and its error is reported).
 */
async function waitReady(specs: ServiceSpec[], started: Array<{ spec: ServiceSpec; pid: number }>, ready: () => Promise<boolean>, stop: { now: boolean }): Promise<void> {
  const kind = specs[0]?.kind;
  if (kind === undefined) return;
  const deadline = Date.now() + READY_MS[kind];
  while (!stop.now && !(await ready())) {
    const dead = started.find((s) => !isAlive(s.pid));
    if (dead !== undefined || Date.now() > deadline) {
      const which = dead ?? started[0] ?? { spec: specs[0]!, pid: -1 };
      throw new DroverError(
        'DROVER_CLUSTER_DAEMON_FAILED',
        `${dead ? `${which.spec.name} exited` : `the ${kind}s did not become ready in ${READY_MS[kind] / 1000} s`}; log ${which.spec.logFile}:\n${await tail(which.spec.logFile)}`,
        { detail: { service: which.spec.name, logFile: which.spec.logFile } },
      );
    }
    await systemClock.sleep(200);
  }
}

/** Detached (its own session: it outlives `drover cluster up`), output appended to its log. */
function spawnService(spec: ServiceSpec, level: string): number {
  const fd = openSync(spec.logFile, 'a');
  try {
    const program = join(REPO, spec.program);
    const [command, ...args] = spec.executable === true ? [...spec.prefix, spec.program, ...spec.args] : [...spec.prefix, process.execPath, ...nodeFlagsOf(program), program, ...spec.args];
    const child = spawn(command!, args, {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, PATH: `${SYSTEM_PATH}:${process.env.PATH ?? ''}`, DROVER_LOG_LEVEL: level },
    });
    child.on('error', () => {
      // reported by the readiness wait that follows every start
    });
    child.unref();
    return child.pid ?? -1;
  } finally {
    closeSync(fd);
  }
}

async function removeDeadSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => null);
  if (stat?.isSocket() && !(await socketAnswers(path))) await rm(path, { force: true });
}

function socketAnswers(path: string, timeoutMs = 1_000): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((done) => {
    const socket = connect({ path });
    const timer = setTimeout(() => finish(true), timeoutMs);
    function finish(live: boolean): void {
      clearTimeout(timer);
      socket.destroy();
      done(live);
    }
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Whether each etcd member of the cluster answers its health endpoint as healthy (in member order). */
export async function etcdHealth(cluster: LocalCluster): Promise<boolean[]> {
  return Promise.all(
    etcdEndpoints(cluster).map(async (endpoint) => {
      try {
        const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2_000) });
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      } catch {
        return false;
      }
    }),
  );
}

/**
 * A GET of the cluster's control service as the operator (mutual TLS); null on any failure.
 * With `others` (every control service's URL), a path no service answers is asked of the
 * next, and a follower's 307 to its leader is followed once: whichever leads answers.
 */
async function getJson(cluster: LocalCluster, url: string, timeoutMs = 3_000, others: string[] = []): Promise<unknown> {
  const { pathname, search } = new URL(url);
  const tries = [url, ...others.map((o) => `${o}${pathname}${search}`).filter((u) => u !== url)];
  for (const candidate of tries) {
    const answer = await getOnce(cluster, candidate, timeoutMs);
    if (answer.location !== undefined && others.includes(new URL(answer.location).origin)) {
      const followed = await getOnce(cluster, answer.location, timeoutMs);
      if (followed.body !== null) return followed.body;
    } else if (answer.body !== null) return answer.body;
  }
  return null;
}

function getOnce(cluster: LocalCluster, url: string, timeoutMs: number): Promise<{ body: unknown; location?: string }> {
  let tls;
  try {
    tls = operatorTls(cluster);
  } catch {
    return Promise.resolve({ body: null });
  }
  return new Promise((done) => {
    const req = request(url, { timeout: timeoutMs, ...tls }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if ((res.statusCode === 307 || res.statusCode === 308) && typeof res.headers.location === 'string') return done({ body: null, location: new URL(res.headers.location, url).href });
        try {
          done({ body: res.statusCode === 200 ? JSON.parse(body) : null });
        } catch {
          done({ body: null });
        }
      });
      res.on('error', () => done({ body: null }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done({ body: null }));
    req.end();
  });
}

async function httpOk(cluster: LocalCluster, url: string): Promise<boolean> {
  return (await getJson(cluster, url, 2_000)) !== null;
}

/**
 * The processes and the control service's view of each node, as a table:
 *   NODE  STATE  AGENT  PROXY  PLUGIN
 * plus the control service's line. `ok` is true when every process runs and every node is known.
 */
export async function servicesReport(cluster: LocalCluster): Promise<{ text: string; ok: boolean }> {
  const status = servicesStatus(cluster);
  const states = await nodeStates(cluster);
  const pid = (name: string): string => {
    const s = status.find((x) => x.name === name);
    return s?.pid != null ? `pid ${s.pid}` : 'DOWN';
  };
  const rows = [['NODE', 'STATE', 'AGENT', 'PROXY', 'PLUGIN']];
  for (const node of cluster.nodes) {
    rows.push([node.name, states.get(node.uuid) ?? 'not registered', pid(`${node.name}-agent`), pid(`${node.name}-proxy`), `${node.pluginName} ${pid(`${node.name}-plugin`)}`]);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const lines = rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd());
  const controls = status.filter((s) => s.kind === 'control');
  const urls = controlUrls(cluster);
  if (controls.length === 1) {
    lines.push(`control service ${controlUrl(cluster)}  ${pid('control')}  (data, logs and pid files in ${servicesDir(cluster.root)})`);
  } else {
    // The leader answers the observed state itself; a follower redirects to it (docs/DESIGN.md §28).
    const roles = await Promise.all(urls.map(async (u) => {
      const answer = await getOnce(cluster, `${u}/v1/state/nodes`, 3_000);
      return answer.body !== null ? '  leader' : answer.location !== undefined ? '  follower' : '  no leader known';
    }));
    const health = await etcdHealth(cluster);
    const endpoints = etcdEndpoints(cluster);
    for (const [j, c] of controls.entries()) {
      lines.push(`control service ${c.name} ${urls[j]}  ${pid(c.name)}${c.pid !== null ? roles[j] : ''}`);
    }
    for (const [j, m] of status.filter((s) => s.kind === 'etcd').entries()) {
      lines.push(`etcd member ${m.name} ${endpoints[j]}  ${pid(m.name)}  ${health[j] ? 'healthy' : 'UNHEALTHY'}`);
    }
    lines.push(`(data, logs and pid files in ${servicesDir(cluster.root)}; etcd data in ${servicesDir(cluster.root)}/etcd)`);
  }
  const ok = status.every((s) => s.pid !== null) && (await etcdHealth(cluster)).every(Boolean) && cluster.nodes.every((n) => states.get(n.uuid) === 'known');
  return { text: lines.join('\n'), ok };
}
