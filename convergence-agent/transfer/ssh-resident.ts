/**
 * The sender's end of `drover-receive resident` (resident-frames.ts): long-lived receive
 * sessions on a peer, each taking one stream after another, so a replication step's receive
 * starts no process on the peer (sshd's login shell and Node cost 0.3–3 s of CPU per start on
 * a loaded machine). At most `max` sessions per connection (opened as receives need them,
 * closed after `IDLE_MS` unused); a receive beyond them waits for one. A session that fails
 * or is cut is dropped and the next receive opens another; a peer whose drover-receive does
 * not know the verb (an older node) is remembered and served by the one-shot receive.
 */
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import { END_FRAME, MAX_FRAME_BYTES, RESIDENT_HELLO, frameHeader } from './resident-frames.ts';
import { Answer, LineSplitter, READY_LINE, commandFor, fromWire, line, safeJson, unexpected, type ReceiveHeader } from './ssh-protocol.ts';

/** What a receive's stream is written to: the ssh channel (one-shot) or a resident session's frames. */
export interface StreamChannel {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** Ends the stream (the channel's EOF, or the end frame); `callback` once written. */
  end(callback?: () => void): unknown;
  /** Cuts the receive short: the peer's `zfs receive` gets no more and discards it. */
  close(): unknown;
}

export interface ResidentReceive {
  channel: StreamChannel;
  verdict: Promise<unknown>;
}

/** A resident session unused this long is closed. */
export const IDLE_MS = 5 * 60_000;
const HELLO_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 30_000;
const STDERR_CAP = 16 * 1024;

export interface ResidentDeps {
  exec(command: string): Promise<ClientChannel>;
  peer: string;
  disconnected(what: string): DroverError;
}

export class ResidentReceivers {
  /** null: not tried on this connection; false: the peer refused the verb (one-shot receives). */
  private supported: boolean | null = null;
  private readonly sessions = new Set<ResidentSession>();
  private readonly idle: ResidentSession[] = [];
  private opening = 0;
  private readonly waiters: Array<() => void> = [];
  /** A session being opened ahead (`warm`): a receive waits for it rather than opening another. */
  private warming: Promise<void> | null = null;

  constructor(private readonly deps: ResidentDeps, readonly max = 4) {}

  /** False once the peer refused `drover-receive resident`. */
  get usable(): boolean {
    return this.supported !== false;
  }

  /** Live sessions (idle or receiving). */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * Starts a receive in a resident session: resolves once the peer answered `DROVER-READY`
   * (or rejects with its refusal); null when the peer does not serve resident receives.
   */
  async receive(header: Extract<ReceiveHeader, { op: 'receive' }>): Promise<ResidentReceive | null> {
    const session = await this.acquire();
    if (session === null) return null;
    return session.receive(header, () => this.release(session));
  }

  /** Opens a session ahead when none is idle (the first receive then finds it ready). */
  warm(): void {
    if (this.supported === false || this.idle.length > 0 || this.opening > 0 || this.sessions.size >= this.max) return;
    const warming: Promise<void> = this.open()
      .then(
        (s) => void (s && this.release(s)),
        () => {},
      )
      .finally(() => {
        if (this.warming === warming) this.warming = null;
      });
    this.warming = warming;
  }

  /** Closes every session (the connection went away). The next receive tries the peer again. */
  close(err: DroverError): void {
    for (const session of [...this.sessions]) session.close(err);
    this.sessions.clear();
    this.idle.length = 0;
    this.supported = null;
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async acquire(): Promise<ResidentSession | null> {
    for (;;) {
      if (this.supported === false) return null;
      const session = this.idle.pop();
      if (session) {
        if (session.alive) return session;
        continue;
      }
      if (this.warming) {
        await this.warming;
        continue;
      }
      if (this.sessions.size + this.opening < this.max) {
        const opened = await this.open();
        if (opened === null) return null;
        return opened;
      }
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  private release(session: ResidentSession): void {
    if (session.alive && this.sessions.has(session)) this.idle.push(session);
    this.waiters.shift()?.();
  }

  private async open(): Promise<ResidentSession | null> {
    this.opening += 1;
    try {
      const channel = await this.deps.exec(commandFor('resident'));
      const session = await ResidentSession.start(channel, this.deps, (s) => this.forget(s));
      if (session === null) {
        this.supported = false;
        for (const wake of this.waiters.splice(0)) wake();
        return null;
      }
      this.supported = true;
      this.sessions.add(session);
      return session;
    } finally {
      this.opening -= 1;
    }
  }

  private forget(session: ResidentSession): void {
    this.sessions.delete(session);
    const at = this.idle.indexOf(session);
    if (at >= 0) this.idle.splice(at, 1);
    this.waiters.shift()?.();
  }
}

interface Settle {
  resolve: (value: unknown) => void;
  reject: (err: DroverError) => void;
  promise: Promise<unknown>;
}

type Slot =
  | { state: 'ready'; resolve: (r: ResidentReceive) => void; reject: (e: DroverError) => void; verdict: Settle }
  | { state: 'streaming'; verdict: Settle };

class ResidentSession {
  private closed: DroverError | null = null;
  private slot: Slot | null = null;
  private idleTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly channel: ClientChannel,
    private readonly deps: ResidentDeps,
    private readonly onClose: (s: ResidentSession) => void,
  ) {}

  /** Waits for the peer's hello; null when its drover-receive refused the verb. */
  static start(channel: ClientChannel, deps: ResidentDeps, onClose: (s: ResidentSession) => void): Promise<ResidentSession | null> {
    const session = new ResidentSession(channel, deps, onClose);
    return new Promise((resolve, reject) => {
      let hello = false;
      let stderr = '';
      let exitCode: number | null = null;
      const timer = setTimeout(() => {
        channel.close();
        reject(new DroverError('DROVER_SSH_TIMEOUT', `drover-receive resident on ${deps.peer} did not start`, { retryable: true }));
      }, HELLO_TIMEOUT_MS);
      const splitter = new LineSplitter((text) => {
        if (hello) return session.onLine(text);
        clearTimeout(timer);
        if (text !== RESIDENT_HELLO) {
          channel.close();
          return reject(unexpected(deps.peer, text, 'drover-receive resident'));
        }
        hello = true;
        session.touch();
        resolve(session);
      });
      channel.on('data', (chunk: Buffer) => {
        try {
          splitter.push(chunk);
        } catch (err) {
          session.close(err as DroverError);
        }
      });
      channel.stderr.setEncoding('utf8');
      channel.stderr.on('data', (d: string) => {
        if (stderr.length < STDERR_CAP) stderr += d;
      });
      channel.on('exit', (code: number | null) => (exitCode = code ?? null));
      channel.once('close', () => {
        clearTimeout(timer);
        if (!hello) {
          // An older drover-receive: its forced command refuses the verb and exits 1.
          if (exitCode !== 0 && /DROVER_SSH_RECEIVE_REFUSED/.test(stderr)) resolve(null);
          else reject(deps.disconnected('the start of a resident receiver'));
        }
        const said = stderr.trim();
        session.close(said ? new DroverError('DROVER_SSH_DISCONNECTED', `drover-receive resident on ${deps.peer} ended: ${said.slice(0, 500)}`, { retryable: true }) : deps.disconnected('a resident receive'));
      });
    });
  }

  get alive(): boolean {
    return this.closed === null;
  }

  receive(header: ReceiveHeader, done: () => void): Promise<ResidentReceive> {
    if (this.closed) return Promise.reject(this.closed);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const settle = { promise: null as unknown as Promise<unknown> } as Settle;
    const verdict = new Promise<unknown>((resolve, reject) => Object.assign(settle, { resolve, reject }));
    settle.promise = verdict;
    verdict.catch(() => {}).finally(() => {
      this.touch();
      done();
    });
    return new Promise<ResidentReceive>((resolve, reject) => {
      // No `DROVER-READY` in time: the session is dropped (the next receive opens another).
      const timer = setTimeout(() => this.close(new DroverError('DROVER_SSH_TIMEOUT', `drover-receive resident on ${this.deps.peer} did not answer a receive`, { retryable: true })), READY_TIMEOUT_MS);
      const settled = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      this.slot = { state: 'ready', resolve: settled(resolve), reject: settled(reject), verdict: settle };
      this.channel.write(line(header));
    });
  }

  private onLine(text: string): void {
    const slot = this.slot;
    if (slot === null) return this.close(unexpected(this.deps.peer, text, 'drover-receive resident'));
    if (slot.state === 'ready' && text === READY_LINE) {
      this.slot = { state: 'streaming', verdict: slot.verdict };
      slot.resolve({ channel: this.framed(), verdict: slot.verdict.promise });
      return;
    }
    const parsed = Answer.safeParse(safeJson(text));
    if (!parsed.success) return this.close(unexpected(this.deps.peer, text, 'drover-receive resident'));
    this.slot = null;
    if (parsed.data.ok) return slot.verdict.resolve(parsed.data.value);
    const err = fromWire(parsed.data.error, this.deps.peer);
    if (slot.state === 'ready') slot.reject(err); // refused: no stream, the session goes on
    slot.verdict.reject(err);
  }

  /** The open stream's writer: frames on the shared channel. */
  private framed(): StreamChannel {
    const channel = this.channel;
    let ended = false;
    return {
      write: (chunk: Buffer) => {
        let ok = true;
        for (let at = 0; at < chunk.length; at += MAX_FRAME_BYTES) {
          const piece = chunk.subarray(at, at + MAX_FRAME_BYTES);
          channel.write(frameHeader(piece.length));
          ok = channel.write(piece);
        }
        return ok;
      },
      once: (event, listener) => channel.once(event, listener),
      end: (callback?: () => void) => {
        if (ended) return callback?.();
        ended = true;
        channel.write(END_FRAME, () => callback?.());
      },
      close: () => this.close(this.deps.disconnected('a resident receive cut short')),
    };
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.closed) return;
    this.idleTimer = setTimeout(() => this.close(this.deps.disconnected('an idle resident receiver')), IDLE_MS);
    this.idleTimer.unref();
  }

  close(err: DroverError): void {
    if (this.closed) return;
    this.closed = err;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const slot = this.slot;
    this.slot = null;
    if (slot?.state === 'ready') slot.reject(err);
    slot?.verdict.reject(err);
    this.channel.close();
    this.onClose(this);
  }
}
