/**
 * Load for Redis, shared by the demo and the move benchmark: bulk data, and a writer that
 * records every write Redis acknowledged, so a move can be judged by what a client saw —
 * the longest gap between two acknowledged writes (the pause), the requests that failed,
 * and the acknowledged writes that are not there afterwards (lost).
 */
import { randomBytes } from 'node:crypto';
import { systemClock } from '#common/clock.ts';
import { RedisConnection, RedisConnectionError, RedisReplyError, type Endpoint } from './redis-client.ts';

export type { Endpoint };

/**
 * SETs `prefix0 … prefixN` with random (incompressible) values until `bytes` of values are
 * written, `pipeline` commands in flight. Returns the number of keys.
 */
export async function loadData(at: Endpoint, options: { prefix: string; bytes: number; valueBytes?: number; pipeline?: number }): Promise<number> {
  const valueBytes = options.valueBytes ?? 4096;
  const keys = Math.ceil(options.bytes / valueBytes);
  const client = await RedisConnection.connect(at);
  try {
    // Lanes share the connection: ioredis sends each SET at once, replies come in order.
    const window = options.pipeline ?? 64;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < keys) {
        const i = next++;
        const reply = await client.run((redis) => redis.set(`${options.prefix}${i}`, randomBytes(valueBytes)));
        if (reply !== 'OK') throw new Error(`SET ${options.prefix}${i} answered ${JSON.stringify(reply)}`);
      }
    };
    await Promise.all(Array.from({ length: window }, lane));
    return keys;
  } finally {
    client.close();
  }
}

/** The value the writer puts under its key number `seq`: checkable without keeping it. */
export function writeValue(run: string, seq: number): string {
  return `${run}:${seq}:${'x'.repeat(64)}`;
}

export interface WriterFailure {
  /** performance.now() */
  at: number;
  seq: number;
  kind: RedisConnectionError['kind'] | 'error-reply' | 'resend-failed';
  message: string;
}

export interface WriterReport {
  acked: number;
  /** Write requests that failed: a connection refused or reset, an error reply, or a re-sent write that failed again. */
  failed: number;
  reconnects: number;
  /** The longest gap between two consecutive acknowledged writes, and when it began (performance.now()). */
  pauseMs: number;
  pauseAt: number | null;
  failures: WriterFailure[];
  /** When each acknowledged write was acknowledged (performance.now()), in order. */
  ackTimes: number[];
}

/** The longest gap between consecutive acknowledgements that overlaps [from, to]. */
export function longestGapWithin(ackTimes: readonly number[], from: number, to: number): number {
  let longest = 0;
  for (let i = 1; i < ackTimes.length; i++) {
    const a = ackTimes[i - 1]!;
    const b = ackTimes[i]!;
    if (b >= from && a <= to) longest = Math.max(longest, b - a);
  }
  return longest;
}

/**
 * Writes `SET <prefix><seq> <value>` one at a time, every `intervalMs`, to wherever
 * `target()` says, recording each acknowledged write. On a closed connection it
 * reconnects and re-sends the write that was not acknowledged, as Redis clients do; every
 * write is retried until acknowledged or the writer stops.
 */
export class AckedWriter {
  readonly run = randomBytes(4).toString('hex');
  private ackTimes = new Float64Array(1 << 16);
  private ackCount = 0;
  private failed = 0;
  private reconnects = 0;
  private readonly failures: WriterFailure[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private client: RedisConnection | null = null;

  constructor(
    private readonly target: () => Endpoint,
    private readonly options: { prefix: string; intervalMs?: number; retryMs?: number } = { prefix: 'w:' },
  ) {}

  key(seq: number): string {
    return `${this.options.prefix}${seq}`;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.writeLoop();
  }

  /** Stops after the write in flight; resolves with the report. */
  async stop(): Promise<WriterReport> {
    this.running = false;
    await this.loop;
    this.client?.close();
    this.client = null;
    return this.report();
  }

  /** Acknowledged writes so far (seq 1 … acked). */
  /** Write requests counted as failed so far. */
  get failedCount(): number {
    return this.failed;
  }

  get acked(): number {
    return this.ackCount;
  }

  report(): WriterReport {
    let pauseMs = 0;
    let pauseAt: number | null = null;
    for (let i = 1; i < this.ackCount; i++) {
      const gap = this.ackTimes[i]! - this.ackTimes[i - 1]!;
      if (gap > pauseMs) {
        pauseMs = gap;
        pauseAt = this.ackTimes[i - 1]!;
      }
    }
    return {
      acked: this.ackCount,
      failed: this.failed,
      reconnects: this.reconnects,
      pauseMs,
      pauseAt,
      failures: [...this.failures],
      ackTimes: Array.from(this.ackTimes.subarray(0, this.ackCount)),
    };
  }

  /**
   * Reads every acknowledged write back (MGET, 500 keys a time) from `at`; returns the
   * keys that are missing or hold another value.
   */
  async verify(at: Endpoint): Promise<{ checked: number; lost: string[] }> {
    const client = await RedisConnection.connect(at);
    const lost: string[] = [];
    try {
      for (let first = 1; first <= this.ackCount; first += 500) {
        const seqs = Array.from({ length: Math.min(500, this.ackCount - first + 1) }, (_, i) => first + i);
        const values = await client.run((redis) => redis.mget(seqs.map((s) => this.key(s))));
        if (!Array.isArray(values)) throw new Error(`MGET answered ${JSON.stringify(values)}`);
        seqs.forEach((seq, i) => {
          if (values[i] !== writeValue(this.run, seq)) lost.push(this.key(seq));
        });
      }
    } finally {
      client.close();
    }
    return { checked: this.ackCount, lost };
  }

  private async writeLoop(): Promise<void> {
    const interval = this.options.intervalMs ?? 2;
    const retry = this.options.retryMs ?? 20;
    for (let seq = this.ackCount + 1; this.running; seq++) {
      const started = performance.now();
      let attempt = 0;
      let countedFailure = false;
      const failure = (kind: WriterFailure['kind'], message: string): void => {
        if (this.failures.length < 100) this.failures.push({ at: performance.now(), seq, kind, message });
        if (!countedFailure) this.failed++;
        countedFailure = true;
      };
      while (this.running) {
        attempt++;
        try {
          if (this.client === null || this.client.closed) {
            const { host, port } = this.target();
            if (this.client !== null) this.reconnects++;
            this.client = await RedisConnection.connect({ host, port });
          }
          const reply = await this.client.run((redis) => redis.set(this.key(seq), writeValue(this.run, seq)));
          if (reply !== 'OK') throw new RedisReplyError(`SET answered ${JSON.stringify(reply)}`);
          this.recordAck(performance.now());
          break;
        } catch (err) {
          if (err instanceof RedisReplyError) failure('error-reply', err.message);
          else if (err instanceof RedisConnectionError) {
            this.client?.close();
            if (err.kind === 'refused' || err.kind === 'reset' || err.kind === 'timeout' || err.kind === 'other') failure(err.kind, err.message);
            else if (attempt > 1) failure('resend-failed', err.message);
          } else throw err;
          // A closed connection is re-tried at once (a client's reconnect); anything else after a short wait.
          if (!(err instanceof RedisConnectionError && err.kind === 'closed' && attempt === 1)) await systemClock.sleep(retry);
        }
      }
      const wait = interval - (performance.now() - started);
      if (wait > 0) await systemClock.sleep(wait);
    }
  }

  private recordAck(at: number): void {
    if (this.ackCount === this.ackTimes.length) {
      const bigger = new Float64Array(this.ackTimes.length * 2);
      bigger.set(this.ackTimes);
      this.ackTimes = bigger;
    }
    this.ackTimes[this.ackCount++] = at;
  }
}
