/**
 * A very small PostgreSQL client for the move benchmark: one connection speaking the
 * frontend/backend protocol v3 over node:net — startup with `trust` authentication, then
 * the simple query protocol (one `Q` message, rows as text, until ReadyForQuery).
 *
 * Why not `pg`: it is not a dependency of this package, and none may be added. Why not
 * psql: a writer that commits once per acknowledged write needs one long-lived connection
 * (as an application's pool has); a psql process per write would measure process start-up,
 * not the move. What it leaves out: other authentication methods, TLS, the extended
 * protocol, COPY, notifications — the benchmark's own image trusts every client.
 */
import { connect, type Socket } from 'node:net';

export interface PgEndpoint {
  host: string;
  port: number;
}

/** The server answered with an ErrorResponse: the query failed, the connection is usable. */
export class PgServerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** The connection failed or closed; `kind` as the Redis client names its failures. */
export class PgConnectionError extends Error {
  constructor(
    readonly kind: 'refused' | 'reset' | 'closed' | 'timeout' | 'other',
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  rows: (string | null)[][];
  error: PgServerError | null;
  resolve: (rows: (string | null)[][]) => void;
  reject: (err: Error) => void;
}

export class PgConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  private ready: { resolve: () => void; reject: (err: Error) => void } | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {}

  static async connect(at: PgEndpoint, options: { timeoutMs?: number; user?: string; database?: string } = {}): Promise<PgConnection> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const socket = connect({ host: at.host, port: at.port });
    socket.setNoDelay(true);
    const conn = new PgConnection(socket);
    const timer = setTimeout(() => conn.fail(new PgConnectionError('timeout', `no ReadyForQuery from ${at.host}:${at.port} within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        conn.ready = { resolve, reject };
        socket.on('data', (chunk: Buffer) => conn.onData(chunk));
        socket.on('error', (err: NodeJS.ErrnoException) => conn.fail(toConnectionError(err)));
        socket.on('close', () => conn.fail(new PgConnectionError('closed', 'the server closed the connection')));
        socket.once('connect', () => {
          const params = Buffer.from(`user\0${options.user ?? 'postgres'}\0database\0${options.database ?? 'postgres'}\0\0`);
          const head = Buffer.alloc(8);
          head.writeInt32BE(8 + params.length, 0);
          head.writeInt32BE(196_608, 4); // protocol 3.0
          socket.write(Buffer.concat([head, params]));
        });
      });
    } finally {
      clearTimeout(timer);
    }
    return conn;
  }

  /** Runs one statement (or several, `;`-separated); resolves with the rows as text. */
  query(sql: string, timeoutMs = 10_000): Promise<(string | null)[][]> {
    if (this.closed) return Promise.reject(new PgConnectionError('closed', 'the connection is closed'));
    if (this.pending) return Promise.reject(new Error('one query at a time'));
    const body = Buffer.from(`${sql}\0`);
    const head = Buffer.alloc(5);
    head.write('Q', 0);
    head.writeInt32BE(4 + body.length, 1);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new PgConnectionError('timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
      this.pending = {
        rows: [],
        error: null,
        resolve: (rows) => (clearTimeout(timer), resolve(rows)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.socket.write(Buffer.concat([head, body]));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Terminate, then close: the server ends the session cleanly.
    this.socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      const type = String.fromCharCode(this.buffer[0]!);
      const body = this.buffer.subarray(5, 1 + length);
      this.buffer = this.buffer.subarray(1 + length);
      this.onMessage(type, body);
    }
  }

  private onMessage(type: string, body: Buffer): void {
    switch (type) {
      case 'R': {
        const method = body.readInt32BE(0);
        if (method !== 0) this.fail(new PgConnectionError('other', `authentication method ${method} is not supported (the benchmark's image trusts every client)`));
        return;
      }
      case 'D': {
        const columns = body.readInt16BE(0);
        const row: (string | null)[] = [];
        let at = 2;
        for (let i = 0; i < columns; i++) {
          const len = body.readInt32BE(at);
          at += 4;
          row.push(len < 0 ? null : body.toString('utf8', at, at + len));
          if (len > 0) at += len;
        }
        this.pending?.rows.push(row);
        return;
      }
      case 'E': {
        const error = parseError(body);
        if (this.pending) this.pending.error = error;
        else if (this.ready) this.fail(new PgConnectionError('other', error.message));
        else if (error.code === '57P01') this.fail(new PgConnectionError('closed', error.message)); // shutdown, no query in flight
        return;
      }
      case 'Z': {
        if (this.ready) {
          const ready = this.ready;
          this.ready = null;
          ready.resolve();
          return;
        }
        const pending = this.pending;
        this.pending = null;
        if (pending) {
          if (pending.error) pending.reject(pending.error);
          else pending.resolve(pending.rows);
        }
        return;
      }
      default:
        return; // ParameterStatus, BackendKeyData, RowDescription, CommandComplete, notices
    }
  }

  private fail(err: Error): void {
    const pending = this.pending;
    const ready = this.ready;
    this.pending = null;
    this.ready = null;
    if (!this.closed) {
      this.closed = true;
      this.socket.destroy();
    }
    // A query that ended with the server's shutdown error, then the close: the error says why.
    if (pending) pending.reject(pending.error?.code === '57P01' ? new PgConnectionError('closed', pending.error.message) : pending.error ?? err);
    ready?.reject(err);
  }
}

function parseError(body: Buffer): PgServerError {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const field = String.fromCharCode(body[at]!);
    const end = body.indexOf(0, at + 1);
    fields.set(field, body.toString('utf8', at + 1, end));
    at = end + 1;
  }
  return new PgServerError(fields.get('C') ?? '?????', fields.get('M') ?? 'error');
}

function toConnectionError(err: NodeJS.ErrnoException): PgConnectionError {
  const kind = err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'other';
  return new PgConnectionError(kind, `${err.code ?? 'error'}: ${err.message}`);
}
