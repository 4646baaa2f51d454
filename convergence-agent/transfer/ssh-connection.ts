/**
 * One persistent ssh2 connection to a peer's OpenSSH server (ssh2's adapter file): reused
 * across steps (the handoff's connection setup is ~0.3 s otherwise), re-opened after a
 * failure. The host key is pinned by its SHA256 fingerprint; AES-GCM ciphers first (AES-NI;
 * the fastest here, docs/DESIGN.md §7). Commands are argv arrays, quoted here
 * from validated names only.
 */
import { createHash } from 'node:crypto';
import { Client, type ClientChannel, type CipherAlgorithm } from 'ssh2';
import { DroverError } from '#common/errors.ts';
import type { CommandResult } from '../zfs/command.ts';
import { SshCommandSession } from './ssh-session.ts';

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

/** Quotes one argument for the remote shell. Callers pass validated names only; this is the second fence. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one remote shell command line, every argument quoted. */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** The remote command line for an argv run by exec: `LC_ALL=C <quoted argv…>`. */
export function remoteCommand(argv: readonly string[]): string {
  return `LC_ALL=C ${quoteArgv(argv)}`;
}

/**
 * Defines `drover_exec` in a warm shell: exec the command with its stdin pipe (sshd's 64 KiB
 * one) grown to 1 MiB, or to the host's `fs.pipe-max-size` when that is lower (a root without
 * CAP_SYS_RESOURCE may not pass it). A deeper queue lets sshd and zfs receive run in longer
 * bursts on busy cores: bench:transfer's ssh went from 0.53 of the local pipe to 0.56–0.67
 * (2026-12-03). 16 MiB measured 0.76–0.88, but zfs-fuse's receive then lost its "out of space"
 * verdict on a full pool (exit SIGPIPE, no stderr) in 2 of 3 runs of replicate-ssh, so it is
 * not used. The shell has no fcntl, so perl does it (Debian's perl-base is Essential); without
 * perl, or on a system other than Linux (F_SETPIPE_SZ is 1031 there), it is a plain exec.
 * Decided when the shell starts, off the critical path.
 */
const PIPE_BYTES = 1024 * 1024;
const DEEP_EXEC = [
  `if [ "$(uname -s)" = Linux ] && command -v perl >/dev/null 2>&1; then`,
  `drover_exec() { exec perl -e 'unless (fcntl(STDIN, 1031, ${PIPE_BYTES})) { open(F, "<", "/proc/sys/fs/pipe-max-size") and fcntl(STDIN, 1031, 0 + <F>) } exec { $ARGV[0] } @ARGV; die "exec $ARGV[0]: $!\\n"' "$@"; }`,
  `else drover_exec() { exec "$@"; }; fi`,
].join('\n');

export class SshConnection {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private session: SshCommandSession | null = null;
  private sessionStarting: Promise<SshCommandSession> | null = null;
  private warm: Promise<ClientChannel> | null = null;

  constructor(private readonly endpoint: SshEndpoint) {}

  /**
   * Runs `argv` on the peer to completion, in the connection's persistent remote shell
   * (ssh-session.ts). A connection lost on the way → DROVER_SSH_DISCONNECTED (retryable).
   */
  async run(argv: readonly string[], options: { timeoutMs?: number } = {}): Promise<CommandResult> {
    const session = await this.commandSession();
    return session.run(quoteArgv(argv), argv, options.timeoutMs ?? 120_000);
  }

  private commandSession(): Promise<SshCommandSession> {
    if (this.session?.alive) return Promise.resolve(this.session);
    this.sessionStarting ??= this.exec(['sh', '-s'])
      .then((channel) => (this.session = new SshCommandSession(channel, (argv) => this.disconnected(argv))))
      .finally(() => (this.sessionStarting = null));
    return this.sessionStarting;
  }

  /**
   * Starts `argv` on the peer with its stdin/stdout on the returned channel, through a
   * pre-started ("warm") remote `sh`, so the login shell's start-up is not on the critical
   * path (the final increment of a move). The shell reads one line, prints a marker and
   * `exec`s the command; nothing else is written before the marker arrives, so the shell
   * cannot have read any of the stream.
   */
  async stream(argv: readonly string[]): Promise<ClientChannel> {
    const channel = await (this.warm ?? this.startWarm());
    this.warm = null;
    this.prewarm();
    return new Promise((resolve, reject) => {
      let seen = '';
      const onData = (chunk: Buffer): void => {
        seen += chunk.toString('latin1');
        const newline = seen.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        channel.off('data', onData);
        channel.off('close', onClose);
        channel.pause();
        if (seen.slice(0, newline) !== 'DROVER-READY') {
          channel.close();
          return reject(new DroverError('DROVER_SSH_PROTOCOL', `unexpected output from the remote shell: ${seen.slice(0, 100)}`));
        }
        const rest = Buffer.from(seen.slice(newline + 1), 'latin1');
        if (rest.length > 0) channel.unshift(rest);
        resolve(channel);
      };
      const timer = setTimeout(() => {
        channel.off('data', onData);
        channel.close();
        reject(new DroverError('DROVER_SSH_TIMEOUT', `the remote shell for ${argv.slice(0, 2).join(' ')} did not answer`, { retryable: true }));
      }, 30_000);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(this.disconnected(argv));
      };
      channel.on('data', onData);
      channel.once('close', onClose);
      channel.write(`echo DROVER-READY; drover_exec ${quoteArgv(argv)}\n`);
    });
  }

  /** Starts a warm shell for the next `stream()` in the background (idempotent). */
  prewarm(): void {
    if (this.warm) return;
    const warm = this.startWarm();
    warm.catch(() => {
      if (this.warm === warm) this.warm = null;
    });
    this.warm = warm;
  }

  private startWarm(): Promise<ClientChannel> {
    return this.exec(['sh', '-s']).then((channel) => {
      channel.write(`LC_ALL=C; export LC_ALL\n${DEEP_EXEC}\n`);
      return channel;
    });
  }

  /** Starts `argv` on the peer; the channel is its stdin/stdout. */
  async exec(argv: readonly string[]): Promise<ClientChannel> {
    const client = await this.connect();
    return new Promise((resolve, reject) => {
      client.exec(remoteCommand(argv), (err, channel) => {
        if (err) {
          this.drop();
          reject(new DroverError('DROVER_SSH_DISCONNECTED', `cannot start ${argv[0]} on ${this.endpoint.host}: ${err.message}`, { retryable: true, cause: err }));
        } else resolve(channel);
      });
    });
  }

  disconnected(argv: readonly string[]): DroverError {
    return new DroverError('DROVER_SSH_DISCONNECTED', `the ssh connection to ${this.endpoint.host}:${this.endpoint.port} closed during ${argv.slice(0, 2).join(' ')}`, {
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
    this.session?.close(this.disconnected(['sh']));
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
