/**
 * A tiny Redis client (RESP2 over node:net) for the demo and the move benchmark: commands
 * as argument arrays, replies parsed incrementally, several commands in flight on one
 * connection (pipelining) answered in order. No dependency; not a general Redis client
 * (no RESP3, no pub/sub, no cluster).
 */
import { connect, type Socket } from 'node:net';

export type RespValue = string | number | null | RespValue[];

/** An error reply (`-ERR …`, `-LOADING …`): the server answered, the command failed. */
export class RespReplyError extends Error {
  override readonly name = 'RespReplyError';
}

/**
 * The connection failed: `refused` (nothing listens), `reset` (ECONNRESET, EPIPE),
 * `closed` (the peer closed it in an orderly way, or we did), `timeout`, or `other`.
 */
export class RespConnectionError extends Error {
  override readonly name = 'RespConnectionError';
  constructor(
    readonly kind: 'refused' | 'reset' | 'closed' | 'timeout' | 'other',
    message: string,
  ) {
    super(message);
  }
}

function kindOf(err: NodeJS.ErrnoException): RespConnectionError['kind'] {
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return 'reset';
  if (err.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

interface Pending {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

/** One connection to a Redis server. */
export class RespClient {
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private failure: RespConnectionError | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new RespConnectionError(kindOf(err), `${err.code ?? 'error'}: ${err.message}`)));
    socket.on('end', () => this.fail(new RespConnectionError('closed', 'the server closed the connection')));
    socket.on('close', () => this.fail(new RespConnectionError('closed', 'the connection closed')));
  }

  /** Connects within `timeoutMs`; rejects with a RespConnectionError. */
  static connect(host: string, port: number, timeoutMs = 5_000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RespConnectionError('timeout', `no connection to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new RespConnectionError(kindOf(err), `${host}:${port}: ${err.code ?? err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RespClient(socket));
      });
    });
  }

  get closed(): boolean {
    return this.failure !== null;
  }

  /**
   * Sends one command; resolves with its reply, rejects with RespReplyError (an error
   * reply) or RespConnectionError. Calls may overlap: replies come back in order.
   */
  command(args: Array<string | Buffer>, timeoutMs = 60_000): Promise<RespValue> {
    if (this.failure) return Promise.reject(this.failure);
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const arg of args) {
      const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
      parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new RespConnectionError('timeout', `no reply within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.pending.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(Buffer.concat(parts));
    });
  }

  /** Closes the connection; commands in flight fail with kind `closed`. */
  close(): void {
    this.fail(new RespConnectionError('closed', 'closed by the client'));
  }

  private fail(err: RespConnectionError): void {
    if (this.failure === null) this.failure = err;
    this.socket.destroy();
    for (const p of this.pending.splice(0)) p.reject(this.failure);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      let parsed: Parsed | null;
      try {
        parsed = parseReply(this.buffer, 0);
      } catch (err) {
        this.fail(err as RespConnectionError);
        return;
      }
      if (parsed === null) return;
      this.buffer = this.buffer.subarray(parsed.end);
      const next = this.pending.shift();
      if (!next) {
        this.fail(new RespConnectionError('other', 'a reply nobody asked for'));
        return;
      }
      if (parsed.value instanceof RespReplyError) next.reject(parsed.value);
      else next.resolve(parsed.value);
    }
  }
}

type Parsed = { value: RespValue | RespReplyError; end: number };

/** One reply from `at`, or null when `buf` does not hold all of it yet. Pure. */
export function parseReply(buf: Buffer, at: number): Parsed | null {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('utf8', at + 1, eol);
  const end = eol + 2;
  switch (String.fromCharCode(buf[at]!)) {
    case '+':
      return { value: line, end };
    case '-':
      return { value: new RespReplyError(line), end };
    case ':':
      return { value: Number(line), end };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end };
      if (buf.length < end + length + 2) return null;
      return { value: buf.toString('utf8', end, end + length), end: end + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end };
      const items: RespValue[] = [];
      let pos = end;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, pos);
        if (item === null) return null;
        // An error inside an array (EXEC) is kept as its message.
        items.push(item.value instanceof RespReplyError ? item.value.message : item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new RespConnectionError('other', `not a RESP reply (starts with ${JSON.stringify(String.fromCharCode(buf[at]!))})`);
  }
}
