/**
 * Worker processes for the user-space path (`workers: N`). One proxy process is one thread:
 * on new connections it spends ~130 µs of CPU each and tops out near one core while HAProxy
 * spreads the same work over its threads. Here the primary binds every listening socket and
 * hands it to N−1 workers over the IPC channel; each process accepts on it and the kernel
 * spreads new connections over them.
 *
 * What stays true with workers:
 * - The primary alone follows the control service. A route table is applied by the primary,
 *   then by every worker, and only then does the follower acknowledge it: a hold is in effect
 *   in every process that accepts before the source agent is told it may stop the application.
 * - Everything that changes a worker (a table, a (re)start) runs one at a time, in order, so a
 *   worker that starts while a table is applied gets that table before it counts as live.
 * - A worker whose primary is gone (the IPC channel closes) stops at once; a worker that dies
 *   is started again after a second, with the current handles and table. Its connections are
 *   lost, the port stays served by the others.
 * - Kernel mode: only the primary owns the nftables table.
 *
 * Only the uv engine can share a listening handle (`tcp-uv.ts` adopt). Pure of process
 * globals: `main.ts` wires the channel of a worker and the environment of a fork.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { RouteTable } from '#common/channel.ts';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { ForwardingOptions } from './port-forwarder.ts';
import { RoutingProxy } from './proxy.ts';
import type { Inbound, TcpCounts, TcpEngine, TcpListener } from './tcp.ts';
import { adoptListener, listenerHandle } from './tcp-uv.ts';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import type { UvHandle } from './tcp-uv-binding.ts';

/** primary → worker */
export type ToWorker =
  | { t: 'config'; listenHost: string; serviceSubnet: string | null; options: ForwardingOptions }
  | { t: 'listener'; host: string; port: number }
  | { t: 'apply'; table: RouteTable }
  | { t: 'stop'; graceMs: number };
/** worker → primary */
export type FromWorker = { t: 'ready' } | { t: 'applied'; version: number } | { t: 'failed'; version: number; error: string };

const key = (host: string, port: number): string => `${host}:${port}`;

/**
 * The primary's engine: a uv engine that remembers the listening handle of every open port,
 * so the workers can be given it.
 */
export class SharingEngine implements TcpEngine {
  readonly name = 'uv' as const;
  readonly handles = new Map<string, { host: string; port: number; handle: UvHandle }>();

  constructor(readonly inner: TcpEngine) {
    if (inner.name !== 'uv') throw new DroverError('DROVER_ENGINE_UNAVAILABLE', 'workers need the uv engine (engine: uv or auto)');
  }

  async listen(host: string, port: number, onInbound: (conn: Inbound) => void): Promise<TcpListener> {
    const listener = await this.inner.listen(host, port, onInbound);
    const handle = listenerHandle(listener)!;
    const k = key(listener.host, listener.port);
    this.handles.set(k, { host: listener.host, port: listener.port, handle });
    return {
      host: listener.host,
      port: listener.port,
      close: () => {
        if (this.handles.get(k)?.handle === handle) this.handles.delete(k);
        return listener.close();
      },
    };
  }

  counts(): TcpCounts {
    return this.inner.counts();
  }

  destroyAll(): Promise<void> {
    this.handles.clear();
    return this.inner.destroyAll();
  }
}

/** A worker's engine: listens on the handles the primary sent, never binds itself. */
export class AdoptingEngine implements TcpEngine {
  readonly name = 'uv' as const;
  private readonly received = new Map<string, UvHandle>();

  constructor(readonly inner: TcpEngine) {}

  /** A listening handle from the primary; one that replaces an unused one closes it. */
  receive(host: string, port: number, handle: UvHandle): void {
    const k = key(host, port);
    this.received.get(k)?.close();
    this.received.set(k, handle);
  }

  async listen(host: string, port: number, onInbound: (conn: Inbound) => void): Promise<TcpListener> {
    const k = key(host, port);
    const handle = this.received.get(k);
    if (handle === undefined) {
      throw new DroverError('DROVER_LISTEN_FAILED', `cannot listen on ${k}: the primary sent no listening socket for it`, { detail: { host, port } });
    }
    this.received.delete(k);
    return adoptListener(this.inner, handle, host, onInbound);
  }

  counts(): TcpCounts {
    return this.inner.counts();
  }

  async destroyAll(): Promise<void> {
    for (const handle of this.received.values()) handle.close();
    this.received.clear();
    await this.inner.destroyAll();
  }
}

/** The IPC channel as a worker sees it (main.ts wires it to the process's own channel). */
export interface WorkerChannel {
  send(message: FromWorker): void;
  onMessage(handler: (message: ToWorker, handle: UvHandle | undefined) => void): void;
  onDisconnect(handler: () => void): void;
}

/** A worker's life: serve what the primary sends until it says stop or goes away. */
export function runWorker(o: { engine: TcpEngine; channel: WorkerChannel; log: Logger; exit: (code: number) => void }): void {
  const engine = new AdoptingEngine(o.engine);
  let proxy: RoutingProxy | null = null;
  let chain = Promise.resolve();
  let stopping = false;
  const stop = (graceMs: number, code: number): void => {
    if (stopping) return;
    stopping = true;
    void chain
      .then(() => (proxy ? proxy.stop(graceMs) : engine.destroyAll()))
      .catch((err: unknown) => o.log.error({ err }, 'worker stop failed'))
      .then(() => o.exit(code));
  };
  o.channel.onMessage((message, handle) => {
    if (stopping) {
      handle?.close();
      return;
    }
    switch (message.t) {
      case 'config':
        // UDP ports are the primary's alone: a datagram socket cannot be shared like a listener.
        proxy = new RoutingProxy({ engine, listenHost: message.listenHost, serviceSubnet: message.serviceSubnet === null ? null : parseServiceSubnet(message.serviceSubnet), udp: false, options: message.options, log: o.log });
        return;
      case 'listener':
        if (handle) engine.receive(message.host, message.port, handle);
        return;
      case 'apply': {
        const { table } = message;
        chain = chain.then(async () => {
          try {
            if (!proxy) throw new Error('no configuration yet');
            await proxy.apply(table);
            o.channel.send({ t: 'applied', version: table.version });
          } catch (err) {
            o.channel.send({ t: 'failed', version: table.version, error: (err as Error).message });
          }
        });
        return;
      }
      case 'stop':
        stop(message.graceMs, 0);
    }
  });
  // The primary is gone (killed, crashed): nobody acknowledges for us any more.
  o.channel.onDisconnect(() => stop(1_000, 1));
  o.channel.send({ t: 'ready' });
}

interface Worker {
  index: number;
  child: ChildProcess;
  sent: WeakSet<UvHandle>;
  live: boolean;
  waiting: ((m: FromWorker) => void) | null;
}

export interface ProxyWorkersOptions {
  /** Worker processes besides the primary (workers − 1). */
  count: number;
  /** The program a worker runs (bin/drover-proxy.js), with the node flags and environment for it. */
  program: string;
  execArgv: string[];
  env: Record<string, string | undefined>;
  engine: SharingEngine;
  listenHost: string;
  /** The primary's service subnet (CIDR), so workers place name routes where it does. */
  serviceSubnet?: string | null;
  options: ForwardingOptions;
  log: Logger;
  /** How long a worker gets to start or to apply a table; default 10 s. */
  answerMs?: number;
}

/** The primary's side: starts the workers, hands them sockets and tables, stops them. */
export class ProxyWorkers {
  private readonly workers: Worker[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private table: RouteTable | null = null;
  private stopping = false;

  constructor(private readonly o: ProxyWorkersOptions) {}

  /** Starts every worker; resolves once each is live (ready, with the current table if any). */
  start(): Promise<void> {
    const starts = Array.from({ length: this.o.count }, (_, i) => this.enqueue(() => this.startOne(i)));
    return Promise.all(starts).then(() => undefined);
  }

  /** Applies `table` in every live worker; rejects if one fails or does not answer. */
  apply(table: RouteTable): Promise<void> {
    this.table = table;
    return this.enqueue(async () => {
      await Promise.all(this.workers.filter((w) => w.live).map((w) => this.applyTo(w, table)));
    });
  }

  pids(): number[] {
    return this.workers.filter((w) => w.live).map((w) => w.child.pid!);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await this.chain.catch(() => {});
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.child.exitCode !== null || w.child.signalCode !== null) return;
        const exited = new Promise<void>((r) => w.child.once('exit', () => r()));
        if (w.child.connected) w.child.send({ t: 'stop', graceMs } satisfies ToWorker);
        else w.child.kill('SIGTERM');
        const timer = setTimeout(() => w.child.kill('SIGKILL'), graceMs + 2_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => {});
    return run;
  }

  private startOne(index: number): Promise<void> {
    const { o } = this;
    const child = fork(o.program, [], { execArgv: o.execArgv, env: o.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const worker: Worker = { index, child, sent: new WeakSet(), live: false, waiting: null };
    this.workers[index] = worker;
    child.on('message', (m: FromWorker) => worker.waiting?.(m));
    child.on('error', () => {}); // an exit follows
    child.once('exit', (code, signal) => {
      worker.live = false;
      worker.waiting?.({ t: 'failed', version: -1, error: `worker exited (${signal ?? code})` });
      if (this.stopping) return;
      o.log.error({ worker: index, code, signal }, 'proxy worker exited; starting it again in 1 s');
      setTimeout(() => {
        if (!this.stopping) this.enqueue(() => this.startOne(index)).catch((err: unknown) => o.log.error({ err, worker: index }, 'proxy worker did not start'));
      }, 1_000).unref();
    });
    return this.answer(worker, (m) => m.t === 'ready', 'start')
      .then(async () => {
        child.send({ t: 'config', listenHost: o.listenHost, serviceSubnet: o.serviceSubnet ?? null, options: o.options } satisfies ToWorker);
        if (this.table) await this.applyTo(worker, this.table);
        worker.live = true;
        o.log.info({ worker: index, workerPid: child.pid }, 'proxy worker live');
      })
      .catch((err: unknown) => {
        child.kill('SIGKILL');
        throw err;
      });
  }

  private async applyTo(worker: Worker, table: RouteTable): Promise<void> {
    for (const { host, port, handle } of this.o.engine.handles.values()) {
      if (worker.sent.has(handle)) continue;
      worker.sent.add(handle);
      worker.child.send({ t: 'listener', host, port } satisfies ToWorker, handle as never);
    }
    worker.child.send({ t: 'apply', table } satisfies ToWorker);
    const answer = await this.answer(worker, (m) => (m.t === 'applied' && m.version === table.version) || m.t === 'failed', `apply version ${table.version}`);
    if (answer.t === 'failed') throw new DroverError('DROVER_WORKER_FAILED', `proxy worker ${worker.index}: ${answer.error}`, { retryable: true });
  }

  private answer(worker: Worker, match: (m: FromWorker) => boolean, what: string): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.waiting = null;
        reject(new DroverError('DROVER_WORKER_FAILED', `proxy worker ${worker.index} did not answer (${what}) within ${this.o.answerMs ?? 10_000} ms`, { retryable: true }));
      }, this.o.answerMs ?? 10_000);
      worker.waiting = (m) => {
        if (!match(m)) return;
        clearTimeout(timer);
        worker.waiting = null;
        resolve(m);
      };
    });
  }
}

/** What the route follower drives: the primary's proxy, then the workers, then it may ack. */
export class ClusteredProxy {
  private applied: number | null = null;

  constructor(
    private readonly primary: RoutingProxy,
    private readonly workers: ProxyWorkers,
  ) {}

  /** The last version applied everywhere: a table a worker failed is applied again. */
  get version(): number | null {
    return this.applied;
  }

  async apply(table: RouteTable): Promise<void> {
    await this.primary.apply(table);
    await this.workers.apply(table);
    this.applied = table.version;
  }
}
