/**
 * The native relay as a child process (native/drover-relay.c, docs/DESIGN.md §32): started
 * with Node's IPC channel as its fd 3, so a bound socket goes to it, and a connection comes
 * back from it, as a descriptor beside a JSON line (`child.send(msg, handle)`). Lines are
 * `{d: "<verb> <args>"}`; the grammar is native/relay-msg.h. This file only starts, restarts
 * and talks to it; what the lines mean is `tcp-native.ts`.
 *
 * A relay that exits (a crash, or a message it refused) is started again, 100 ms doubling
 * to 5 s later; the owner's `restored` hook gives it every open port and route again. Its
 * connections are gone with it; the listening sockets are not (this process keeps them, so
 * the kernel queues new connections meanwhile). A line from the relay this side does not
 * understand kills it, and the same restart follows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backoffDelay, type Backoff } from '#common/backoff.ts';
import type { Logger } from '#common/log.ts';
import type { UvHandle } from './tcp-uv-binding.ts';

export const DEFAULT_RELAY_PATH = fileURLToPath(new URL('../native/build/drover-relay', import.meta.url));

const RESTART: Backoff = { initialMs: 100, capMs: 5_000 };

/** The relay binary when it is built (`make -C native`), else null. */
export function relayBinary(path = DEFAULT_RELAY_PATH): string | null {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return null;
  }
}

export interface RelayArgs {
  threads: number;
  bufferBytes: number;
  connectTimeoutMs: number;
  backlog: number;
}

export interface RelayEvents {
  /** A line from the relay, split on spaces; false when it is not one this side knows. */
  line(words: string[], handle: UvHandle | undefined): boolean;
  /** A new relay runs: give it the state again. */
  restored(): void;
  /** The relay is gone (its connections with it). */
  exited(): void;
}

export class RelayProcess {
  private child: ChildProcess | null = null;
  private stopping = false;
  private failures = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Relays started since this object was made: 1 at first, +1 per restart. */
  generation = 0;

  constructor(
    private readonly path: string,
    private readonly args: RelayArgs,
    private readonly events: RelayEvents,
    private readonly log: Logger,
  ) {}

  start(): void {
    const { threads, bufferBytes, connectTimeoutMs, backlog } = this.args;
    const child = spawn(this.path, [threads, bufferBytes, connectTimeoutMs, backlog].map(String), { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    this.child = child;
    this.generation++;
    this.startedAt = performance.now();
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => this.log.warn({ pid: child.pid, text: text.trim().slice(0, 500) }, 'native relay says'));
    child.on('message', (msg: unknown, handle: unknown) => this.onMessage(child, msg, handle as UvHandle | undefined));
    child.on('error', (err) => this.log.error({ err }, 'native relay failed to start'));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    // Neither the child nor its channel keeps this process alive; the proxy's own handles do.
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    if (this.generation > 1) this.events.restored();
  }

  /** Sends one line, with a socket when `handle` is given. False when no relay runs now. */
  send(line: string, handle?: UvHandle): boolean {
    const child = this.child;
    if (child === null || !child.connected) return false;
    try {
      child.send({ d: line }, handle as never);
      return true;
    } catch (err) {
      this.log.warn({ err }, 'native relay message not sent');
      return false;
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Kills the relay for good; resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    // Held while it dies: the child is unref'd, and once its stderr pipe closed nothing else may
    // keep this process alive — Node would exit (code 0) before the 'exit' event and skip what
    // the caller does after this (the proxy's "proxy stopped", its exit code).
    child.ref();
    child.kill('SIGKILL');
    await gone;
  }

  /** For tests: what a crash does. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private onMessage(child: ChildProcess, msg: unknown, handle: UvHandle | undefined): void {
    if (child !== this.child) return (handle as { close?: () => void } | undefined)?.close?.();
    const d = (msg as { d?: unknown } | null)?.d;
    if (typeof d === 'string' && this.events.line(d.split(' '), handle)) return;
    this.log.error({ msg: JSON.stringify(msg).slice(0, 200) }, 'native relay sent a line this proxy does not understand; restarting it');
    (handle as { close?: () => void } | undefined)?.close?.();
    child.kill('SIGKILL');
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = null;
    this.events.exited();
    if (this.stopping) return;
    if (performance.now() - this.startedAt > 10_000) this.failures = 0;
    const delay = backoffDelay(RESTART, ++this.failures);
    this.log.error({ code, signal, restartInMs: delay }, 'native relay exited; its connections are lost, the ports stay open; starting it again');
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopping) this.start();
    }, delay);
    this.timer.unref();
  }
}
