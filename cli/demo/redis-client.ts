/**
 * The one adapter of ioredis: connections for the demo's and the benchmarks' Redis load
 * (redis-load.ts) and the migration tests. ioredis brings the protocol, pipelining and typed
 * commands; its own resilience is switched off, because the acknowledged-write recorder must
 * see and count every failure itself: no offline queue (a command on a broken connection
 * fails at once), no automatic reconnect (`retryStrategy` → null: the writer reconnects and
 * counts it), no re-sending of unanswered commands after a reconnect, no per-request retries.
 * Errors are classified here, once: a Redis error reply becomes a RedisReplyError, anything
 * else a RedisConnectionError with its kind.
 */
import { Redis, ReplyError } from 'ioredis';

/** An error reply (`-ERR …`, `-LOADING …`): the server answered, the command failed. */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
}

export interface Endpoint {
  host: string;
  port: number;
}

export type ConnectionFailureKind = 'refused' | 'reset' | 'closed' | 'timeout' | 'other';

/**
 * The connection failed: `refused` (nothing listens), `reset` (ECONNRESET, EPIPE), `closed`
 * (the peer closed it in an orderly way, or we did), `timeout`, or `other`.
 */
export class RedisConnectionError extends Error {
  override readonly name = 'RedisConnectionError';
  constructor(
    readonly kind: ConnectionFailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  /** Default 5 s. */
  connectTimeoutMs?: number;
  /** A command not answered in time fails with kind `timeout` and closes the connection. Default 60 s. */
  commandTimeoutMs?: number;
}

/** One connection to a Redis server; never reconnects by itself. */
export class RedisConnection {
  /** The socket's last error (ioredis reports a reset as an `error` event, then fails commands as "closed"). */
  private lastError: NodeJS.ErrnoException | null = null;

  private constructor(private readonly redis: Redis) {
    redis.on('error', (err: NodeJS.ErrnoException) => {
      this.lastError = err;
    });
  }

  /** Connects; rejects with a RedisConnectionError. */
  static async connect(at: Endpoint, options: ConnectOptions = {}): Promise<RedisConnection> {
    const redis = new Redis({
      host: at.host,
      port: at.port,
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      commandTimeout: options.commandTimeoutMs ?? 60_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      enableReadyCheck: false,
      disableClientInfo: true,
    });
    const connection = new RedisConnection(redis);
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw connection.classify(err, `${at.host}:${at.port}: `);
    }
    return connection;
  }

  /** False once the connection failed or was closed: a new one is needed. */
  get closed(): boolean {
    return this.redis.status !== 'ready';
  }

  /**
   * Runs commands on the connection; a failure other than an error reply rejects with a
   * RedisConnectionError (and a timed-out connection is closed, so no late reply is matched
   * to a later command).
   */
  async run<T>(commands: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await commands(this.redis);
    } catch (err) {
      const error = this.classify(err, '');
      if (error instanceof RedisConnectionError && error.kind === 'timeout') this.close();
      throw error;
    }
  }

  /** PING → PONG. */
  async ping(): Promise<boolean> {
    return (await this.run((r) => r.ping())) === 'PONG';
  }

  /** Closes the connection; commands in flight fail with kind `closed`. */
  close(): void {
    this.redis.disconnect();
  }

  private classify(err: unknown, prefix: string): Error {
    if (err instanceof ReplyError) return new RedisReplyError((err as Error).message);
    const message = (err as Error).message ?? String(err);
    if (message === 'Command timed out') return new RedisConnectionError('timeout', `${prefix}no reply in time`);
    const cause = this.lastError;
    const code = cause?.code;
    if (code === 'ECONNREFUSED') return new RedisConnectionError('refused', `${prefix}${code}`);
    if (code === 'ECONNRESET' || code === 'EPIPE') return new RedisConnectionError('reset', `${prefix}${code}: ${cause!.message}`);
    if (code === 'ETIMEDOUT') return new RedisConnectionError('timeout', `${prefix}${code}: ${cause!.message}`);
    if (message === 'Connection is closed.' || message.startsWith("Stream isn't writeable")) {
      return new RedisConnectionError('closed', `${prefix}${cause ? `${cause.code ?? cause.message}: ` : ''}the connection closed`);
    }
    return new RedisConnectionError('other', `${prefix}${message}`);
  }
}
