/**
 * The control service's TLS (docs/DESIGN.md §23): its certificate, the cluster CA every
 * client certificate must chain to, and the revoked list, reloaded when the file changes
 * (polled every two seconds) or on SIGHUP. A connection whose client certificate is revoked
 * is closed after the handshake, before any request is read; a request on a connection
 * that was open when its certificate was revoked is refused (app.ts checks every request).
 */
import { readFileSync, statSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { parseRevoked } from '#common/cluster-ca.ts';
import { normalSerial } from '#common/certificates.ts';
import type { Logger } from '#common/log.ts';

export interface TlsFilesConfig {
  ca: string;
  cert: string;
  key: string;
}

/** https.Server options: TLS 1.3, a client certificate signed by the cluster CA required. */
export function serverTlsOptions(files: TlsFilesConfig): ServerOptions {
  return {
    ca: readFileSync(files.ca, 'utf8'),
    cert: readFileSync(files.cert, 'utf8'),
    key: readFileSync(files.key, 'utf8'),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  };
}

/** The serials refused, from a `revoked.txt` (common/cluster-ca.ts), kept current. */
export class RevokedList {
  private serials = new Set<string>();
  private mtimeMs = -1;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string | null,
    private readonly log: Logger,
  ) {
    this.reload();
  }

  /** Reads the file again if it changed. A missing or unreadable file keeps the list it had (and says so). */
  reload(force = false): void {
    if (this.file === null) return;
    try {
      const stat = statSync(this.file);
      if (!force && stat.mtimeMs === this.mtimeMs) return;
      this.serials = parseRevoked(readFileSync(this.file, 'utf8'));
      this.mtimeMs = stat.mtimeMs;
      this.log.info({ file: this.file, revoked: this.serials.size }, 'revoked list loaded');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // No list yet (nothing revoked): said once, not at every poll.
        if (this.mtimeMs !== -2) this.log.info({ file: this.file }, 'no revoked list yet: nothing is revoked');
        this.serials = new Set();
        this.mtimeMs = -2;
        return;
      }
      this.log.warn({ err, file: this.file }, 'revoked list not readable; the previous list stays');
    }
  }

  has(serial: string): boolean {
    return this.serials.size > 0 && this.serials.has(normalSerial(serial));
  }

  /** Polls the file every `everyMs`; `stop()` ends it. */
  watch(everyMs = 2_000): void {
    if (this.file === null || this.timer) return;
    this.timer = setInterval(() => this.reload(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Closes each new connection whose client certificate is revoked, right after its handshake. */
  guard(server: TlsServer): void {
    server.on('secureConnection', (socket: TLSSocket) => {
      const serial = socket.getPeerCertificate()?.serialNumber;
      if (serial && this.has(serial)) {
        this.log.warn({ serial, remote: socket.remoteAddress }, 'revoked client certificate refused');
        socket.destroy();
      }
    });
  }
}
