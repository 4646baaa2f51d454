/**
 * One persistent ssh2 connection to a peer's OpenSSH server (ssh2's adapter file): reused
 * across steps (the handoff's connection setup is ~0.3 s otherwise), re-opened after a
 * failure. The host key is pinned by its SHA256 fingerprint; AES-GCM ciphers first (AES-NI;
 * the fastest here, docs/DESIGN.md §7). On the peer drover's key runs only drover-receive
 * (docs/DESIGN.md §24): the connection asks for its two verbs and speaks ssh-protocol.ts.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Client, type ClientChannel, type CipherAlgorithm } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import { Answer, LineSplitter, READY_LINE, commandFor, fromWire, line, safeJson, unexpected, type ReceiveHeader } from './ssh-protocol.ts';
import { ResidentReceivers, type StreamChannel } from './ssh-resident.ts';
import { SshSession } from './ssh-session.ts';

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** `SHA256:<base64, no padding>`, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  privateKey: string | Buffer;
  ciphers?: CipherAlgorithm[];
  readyTimeoutMs?: number;
}

export const DEFAULT_CIPHERS: CipherAlgorithm[] = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes256-ctr',
];

/** OpenSSH's SHA256 fingerprint of a host key blob. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** A receive on the peer: its channel (write the stream, then end it) and drover-receive's verdict. */
export interface RemoteReceive {
  channel: StreamChannel;
  /** Resolves with the verdict's value; rejects with the peer's classified error, or a disconnect. */
  verdict: Promise<unknown>;
}

const STDERR_CAP = 16 * 1024;

/** The one argv `stream()` still recognizes: what the size of zfs receive's stdin pipe is. */
export const PIPE_SIZE_PROBE: readonly string[] = ['perl', '-e', 'print fcntl(STDIN, 1032, 0)'];

export class SshConnection {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private session: SshSession | null = null;
  private sessionStarting: Promise<SshSession> | null = null;
  private warm: Promise<ClientChannel> | null = null;
  /** A receive opened ahead (`preopen`): its header's key, the receive, and its expiry timer. */
  private preopened: { key: string; receive: Promise<RemoteReceive>; timer: NodeJS.Timeout } | null = null;

  /** Long-lived receivers for incremental streams (ssh-resident.ts). */
  private readonly resident: ResidentReceivers;

  constructor(private readonly endpoint: SshEndpoint, options: { residentMax?: number } = {}) {
    this.resident = new ResidentReceivers({ exec: (c) => this.exec(c), peer: this.peer, disconnected: (w) => this.disconnected(w) }, options.residentMax ?? 4);
  }

  /** Live resident receive sessions on the peer (tests, diagnostics). */
  get residentSessions(): number {
    return this.resident.size;
  }

  private get peer(): string {
    return `${this.endpoint.host}:${this.endpoint.port}`;
  }

  /**
   * Sends one request to the connection's `drover-receive session` on the peer (started on
   * first use). A connection lost on the way → DROVER_SSH_DISCONNECTED (retryable).
   */
  async request(body: Record<string, unknown> & { op: string }, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const session = await this.commandSession();
    return session.request(body, options.timeoutMs ?? 120_000);
  }

  private commandSession(): Promise<SshSession> {
    if (this.session?.alive) return Promise.resolve(this.session);
    this.sessionStarting ??= this.exec(commandFor('session'))
      .then((channel) => (this.session = new SshSession(channel, this.peer, (what) => this.disconnected(what))))
      .finally(() => (this.sessionStarting = null));
    return this.sessionStarting;
  }

  /**
   * Starts a receive on the peer through a pre-started ("warm") `drover-receive receive`, so
   * the login shell's and Node's start-up are not on the critical path (the final increment
   * of a move): sends the header, waits for `DROVER-READY`; from then on what is written to
   * the channel goes straight into `zfs receive`'s stdin, and the verdict comes as one line.
   */
  async receive(header: ReceiveHeader): Promise<RemoteReceive> {
    const ahead = this.takePreopened(headerKey(header));
    if (ahead) {
      try {
        return await ahead;
      } catch {
        // Opened ahead but failed (the connection went meanwhile): a receive of its own.
      }
    }
    // An increment goes to a resident receiver (no process started on the peer); a whole
    // dataset, and every receive of a peer without the verb, to a one-shot `receive`.
    if (header.op === 'receive' && !header.full && this.resident.usable) {
      const resident = await this.resident.receive(header);
      if (resident !== null) return resident;
    }
    return this.openReceive(header);
  }

  /**
   * Opens the receive `header` describes now, for the next `receive()` with the same header
   * (a cutover opens its final send's receive while the proxies take the hold, so the warm
   * receiver's start-up and `zfs receive`'s are out of the stopped interval). Resolves once
   * the peer answered `DROVER-READY`. Unused for `PREOPEN_MS`, it is closed.
   */
  async preopen(header: ReceiveHeader): Promise<void> {
    this.closePreopened();
    const receive = this.openReceive(header);
    receive.catch(() => {});
    const timer = setTimeout(() => this.closePreopened(), PREOPEN_MS);
    timer.unref();
    this.preopened = { key: headerKey(header), receive, timer };
    await receive;
  }

  /** The receive opened ahead for `key`, taken (once); one opened for another header is closed. */
  private takePreopened(key: string): Promise<RemoteReceive> | null {
    const ahead = this.preopened;
    if (ahead === null) return null;
    if (ahead.key !== key) {
      this.closePreopened();
      return null;
    }
    clearTimeout(ahead.timer);
    this.preopened = null;
    return ahead.receive;
  }

  /** Closes an unused receive opened ahead: its `zfs receive` gets no stream and changes nothing. */
  private closePreopened(): void {
    const ahead = this.preopened;
    if (ahead === null) return;
    this.preopened = null;
    clearTimeout(ahead.timer);
    ahead.receive.then((r) => r.channel.close(), () => {});
  }

  private async openReceive(header: ReceiveHeader): Promise<RemoteReceive> {
    const channel = await (this.warm ?? this.startWarm());
    this.warm = null;
    this.prewarm();
    let stderr = '';
    let exitCode: number | null = null;
    let settleVerdict: { resolve: (v: unknown) => void; reject: (e: DroverError) => void } | null = null;
    const verdict = new Promise<unknown>((resolve, reject) => (settleVerdict = { resolve, reject }));
    verdict.catch(() => {});
    return new Promise((resolve, reject) => {
      let ready = false;
      const fail = (err: DroverError): void => {
        clearTimeout(timer);
        if (!ready) reject(err);
        settleVerdict?.reject(err);
        settleVerdict = null;
      };
      const splitter = new LineSplitter((text) => {
        if (!ready) {
          if (text !== READY_LINE) {
            channel.close();
            return fail(unexpected(this.peer, text));
          }
          ready = true;
          clearTimeout(timer);
          return resolve({ channel, verdict });
        }
        const parsed = Answer.safeParse(safeJson(text));
        if (!parsed.success) return fail(unexpected(this.peer, text));
        if (parsed.data.ok) settleVerdict?.resolve(parsed.data.value);
        else settleVerdict?.reject(fromWire(parsed.data.error, this.peer));
        settleVerdict = null;
      });
      channel.on('data', (chunk: Buffer) => {
        try {
          splitter.push(chunk);
        } catch (err) {
          channel.close();
          fail(err as DroverError);
        }
      });
      channel.stderr.setEncoding('utf8');
      channel.stderr.on('data', (d: string) => {
        if (stderr.length < STDERR_CAP) stderr += d;
      });
      channel.on('exit', (code: number | null) => (exitCode = code ?? null));
      channel.once('close', () => {
        // A verdict line is settled already; otherwise say why there is none.
        const said = stderr.trim();
        if (exitCode !== null && exitCode !== 0 && said !== '') {
          fail(new DroverError(/DROVER_SSH_RECEIVE_REFUSED/.test(said) ? 'DROVER_SSH_RECEIVE_REFUSED' : 'DROVER_SSH_PROTOCOL', `drover-receive on ${this.peer} exited ${exitCode}: ${said.slice(0, 500)}`, {
            detail: { peer: this.peer, exitCode },
          }));
        } else {
          fail(this.disconnected(`the receive of ${header.op === 'receive' ? header.datasetId : header.op}`));
        }
      });
      const timer = setTimeout(() => {
        channel.close();
        fail(new DroverError('DROVER_SSH_TIMEOUT', `drover-receive on ${this.peer} did not answer a receive`, { retryable: true }));
      }, 30_000);
      channel.write(line(header));
    });
  }

  /** The size in bytes of the pipe `zfs receive` reads on the peer (grown from sshd's 64 KiB). */
  async receivePipeBytes(): Promise<number> {
    const { channel, verdict } = await this.receive({ op: 'pipe-size' });
    channel.end();
    return Number(await verdict);
  }

  /**
   * @deprecated For callers written against the shell transport, which ran any argv on the
   * peer. Only the pipe-size probe (`PIPE_SIZE_PROBE`) is still recognized, answered by
   * drover-receive's `pipe-size` diagnostic; the result reads like that program's stdout.
   * Any other argv is refused here (DROVER_SSH_RECEIVE_REFUSED): the peer runs no commands.
   * Use `receivePipeBytes()`.
   */
  async stream(argv: readonly string[]): Promise<PassThrough> {
    if (argv.length !== PIPE_SIZE_PROBE.length || argv.some((a, i) => a !== PIPE_SIZE_PROBE[i])) {
      throw new DroverError('DROVER_SSH_RECEIVE_REFUSED', `the peer runs drover-receive only, not ${JSON.stringify(argv.slice(0, 3))}`);
    }
    const out = new PassThrough();
    out.write(String(await this.receivePipeBytes()));
    return out;
  }

  /**
   * Starts, in the background, a resident receiver for the next increment and a warm one-shot
   * receive for the next whole send or receive opened ahead (each idempotent: an idle one is
   * kept until used).
   */
  prewarm(): void {
    this.resident.warm();
    if (this.warm) return;
    const warm = this.startWarm();
    warm.catch(() => {
      if (this.warm === warm) this.warm = null;
    });
    this.warm = warm;
  }

  private startWarm(): Promise<ClientChannel> {
    return this.exec(commandFor('receive'));
  }

  /** Starts `command` on the peer (where the forced command reads it as SSH_ORIGINAL_COMMAND); the channel is its stdin/stdout. */
  async exec(command: string): Promise<ClientChannel> {
    const client = await this.connect();
    return new Promise((resolve, reject) => {
      client.exec(command, (err, channel) => {
        if (err) {
          this.drop();
          reject(new DroverError('DROVER_SSH_DISCONNECTED', `cannot start ${command} on ${this.endpoint.host}: ${err.message}`, { retryable: true, cause: err }));
        } else resolve(channel);
      });
    });
  }

  disconnected(what: string): DroverError {
    return new DroverError('DROVER_SSH_DISCONNECTED', `the ssh connection to ${this.endpoint.host}:${this.endpoint.port} closed during ${what}`, {
      retryable: true,
      detail: { host: this.endpoint.host, port: this.endpoint.port },
    });
  }

  /** Closes the connection; the next call reconnects. */
  close(): void {
    this.drop();
  }

  private drop(): void {
    const client = this.client;
    this.client = null;
    this.closePreopened();
    this.resident.close(this.disconnected('a resident receive'));
    this.session?.close(this.disconnected('drover-receive session'));
    this.session = null;
    this.warm = null;
    client?.end();
    client?.destroy();
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const { host, port, user, privateKey } = this.endpoint;
    const expected = this.endpoint.hostKeyFingerprint;
    let presented: string | null = null;
    this.connecting = new Promise<Client>((resolve, reject) => {
      const client = new Client();
      const fail = (err: Error): void => {
        client.destroy();
        if (presented !== null && presented !== expected) {
          reject(new DroverError('DROVER_SSH_HOST_KEY_MISMATCH', `the host key of ${host}:${port} is ${presented}, not the pinned ${expected}`, {
            detail: { host, port, expected, presented },
          }));
          return;
        }
        reject(new DroverError('DROVER_SSH_CONNECT_FAILED', `cannot connect to ${user}@${host}:${port}: ${err.message}`, {
          retryable: !/authentication/i.test(err.message),
          detail: { host, port, user },
          cause: err,
        }));
      };
      client.once('ready', () => {
        client.off('error', fail);
        // Small frames (the command session's status lines, window adjusts) go out at once.
        client.setNoDelay(true);
        // A lost connection takes its command session and warm shell with it.
        client.on('error', () => this.client === client && this.drop());
        client.on('close', () => this.client === client && this.drop());
        this.client = client;
        resolve(client);
      });
      client.once('error', fail);
      client.connect({
        host,
        port,
        username: user,
        privateKey,
        readyTimeout: this.endpoint.readyTimeoutMs ?? 15_000,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
        algorithms: { cipher: this.endpoint.ciphers ?? DEFAULT_CIPHERS, compress: ['none'] },
        hostVerifier: (key: Buffer) => {
          presented = sshFingerprint(key);
          return presented === expected;
        },
      });
    }).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }
}

/** How long a receive opened ahead waits for its step before it is closed. */
const PREOPEN_MS = 60_000;

/** What makes two receive headers the same receive. */
function headerKey(header: ReceiveHeader): string {
  return JSON.stringify(Object.entries(header).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
