/**
 * The sender's end of a `drover-receive session` on a peer (ssh-protocol.ts): one per
 * connection, requests answered in order, one JSON object a line. Why a session: sshd starts
 * the user's login shell for every exec (2.8 s on the test machine, whose root .bashrc runs
 * pyenv) and drover-receive is a Node program; a step runs a dozen short requests, and here
 * both start once per connection.
 */
import type { ClientChannel } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import { Answer, LineSplitter, fromWire, line } from './ssh-protocol.ts';

type Body = Record<string, unknown> & { op: string };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: DroverError) => void;
  timer: NodeJS.Timeout;
  op: string;
}

const STDERR_CAP = 16 * 1024;

export class SshSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed: DroverError | null = null;
  private stderr = '';
  private exitCode: number | null = null;

  constructor(
    private readonly channel: ClientChannel,
    private readonly peer: string,
    /** The error for a session whose connection went away. */
    private readonly disconnected: (what: string) => DroverError,
  ) {
    const splitter = new LineSplitter((text) => this.onLine(text));
    channel.on('data', (chunk: Buffer) => {
      try {
        splitter.push(chunk);
      } catch (err) {
        this.close(err as DroverError);
      }
    });
    channel.stderr.setEncoding('utf8');
    channel.stderr.on('data', (d: string) => {
      if (this.stderr.length < STDERR_CAP) this.stderr += d;
    });
    channel.on('exit', (code: number | null) => (this.exitCode = code ?? null));
    channel.on('close', () => this.close(this.ended()));
  }

  get alive(): boolean {
    return this.closed === null;
  }

  /** Sends one request; resolves with its value, rejects with the peer's classified error. */
  request(body: Body, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close(new DroverError('DROVER_SSH_TIMEOUT', `${body.op} timed out on ${this.peer}`, { retryable: true }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, op: body.op });
      this.channel.write(line({ ...body, id }));
    });
  }

  close(err: DroverError): void {
    if (this.closed) return;
    this.closed = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.channel.close();
  }

  /**
   * Why the session ended: drover-receive exited with a message (it refused the command, or
   * the peer has no drover-receive: permanent), or the connection went (retryable).
   */
  private ended(): DroverError {
    const said = this.stderr.trim();
    if (this.exitCode !== null && this.exitCode !== 0 && said !== '') {
      return new DroverError(/DROVER_SSH_RECEIVE_REFUSED/.test(said) ? 'DROVER_SSH_RECEIVE_REFUSED' : 'DROVER_SSH_PROTOCOL', `drover-receive on ${this.peer} exited ${this.exitCode}: ${said.slice(0, 500)}`, {
        detail: { peer: this.peer, exitCode: this.exitCode },
      });
    }
    return this.disconnected('drover-receive session');
  }

  private onLine(text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const parsed = Answer.safeParse(raw);
    if (!parsed.success || parsed.data.id === undefined) {
      // A refused session (a line with no id) names its own error; anything else is garbage.
      if (parsed.success && !parsed.data.ok) return this.close(fromWire(parsed.data.error, this.peer));
      return this.close(new DroverError('DROVER_SSH_PROTOCOL', `unexpected output from drover-receive on ${this.peer}: ${text.slice(0, 100)}`));
    }
    const answer = parsed.data;
    const waiter = this.pending.get(answer.id!);
    if (!waiter) return;
    this.pending.delete(answer.id!);
    clearTimeout(waiter.timer);
    if (answer.ok) waiter.resolve(answer.value);
    else waiter.reject(fromWire(answer.error, this.peer));
  }
}
