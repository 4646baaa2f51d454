/**
 * Load for PostgreSQL in the move benchmark, judged as the Redis writer is
 * (cli/demo/redis-load.ts): one INSERT at a time on one connection, each its own
 * transaction (autocommit: one commit — one WAL flush — per acknowledged write), recording
 * when each was acknowledged. On a lost connection it reconnects and re-sends the write
 * that was not acknowledged (`ON CONFLICT DO NOTHING`: a re-sent write that had committed
 * is not a second row). Counted as failed: a refused or reset connection, an error reply,
 * a timeout, or a re-sent write that failed again; a connection the server closed (its
 * fast shutdown ends sessions with 57P01, rolling back the insert in flight) is re-sent
 * once at once, as a client's pool does.
 */
import { randomBytes } from 'node:crypto';
import { systemClock } from '#common/clock.ts';
import type { WriterFailure, WriterReport } from '../cli/demo/redis-load.ts';
import { PgConnection, PgConnectionError, PgServerError, type PgEndpoint } from './pg-client.ts';

export const WRITES_TABLE = 'bench_writes';

export async function prepareTables(at: PgEndpoint): Promise<void> {
  const conn = await PgConnection.connect(at);
  try {
    await conn.query(`CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (run text NOT NULL, seq bigint NOT NULL, payload text NOT NULL, PRIMARY KEY (run, seq))`);
    await conn.query('CREATE TABLE IF NOT EXISTS bench_data (id bigserial PRIMARY KEY, payload text NOT NULL)');
  } finally {
    conn.close();
  }
}

/** Inserts about `mib` MiB of rows (1 KiB of hex each) in batches, each its own statement. */
export async function loadRows(at: PgEndpoint, mib: number): Promise<void> {
  const conn = await PgConnection.connect(at);
  try {
    const rows = mib * 1024;
    for (let done = 0; done < rows; done += 16_384) {
      const n = Math.min(16_384, rows - done);
      // 32 md5s of random numbers: 1 KiB that does not compress away.
      await conn.query(`INSERT INTO bench_data (payload) SELECT (SELECT string_agg(md5(random()::text || g::text || i::text), '') FROM generate_series(1, 32) i) FROM generate_series(1, ${n}) g`, 600_000);
    }
  } finally {
    conn.close();
  }
}

export class PgAckedWriter {
  readonly run = randomBytes(4).toString('hex');
  private readonly ackTimes: number[] = [];
  private failed = 0;
  private reconnects = 0;
  private readonly failures: WriterFailure[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private conn: PgConnection | null = null;

  constructor(private readonly target: () => PgEndpoint) {}

  start(): void {
    this.running = true;
    this.loop = this.writeLoop();
  }

  async stop(): Promise<WriterReport> {
    this.running = false;
    await this.loop;
    this.conn?.close();
    this.conn = null;
    return this.report();
  }

  report(): WriterReport {
    let pauseMs = 0;
    let pauseAt: number | null = null;
    for (let i = 1; i < this.ackTimes.length; i++) {
      const gap = this.ackTimes[i]! - this.ackTimes[i - 1]!;
      if (gap > pauseMs) [pauseMs, pauseAt] = [gap, this.ackTimes[i - 1]!];
    }
    return { acked: this.ackTimes.length, failed: this.failed, reconnects: this.reconnects, pauseMs, pauseAt, failures: [...this.failures], ackTimes: [...this.ackTimes] };
  }

  /** The acknowledged writes (seq 1 … acked) missing from the table read at `at`. */
  async verify(at: PgEndpoint): Promise<{ checked: number; lost: number[] }> {
    const conn = await PgConnection.connect(at);
    try {
      const rows = await conn.query(`SELECT seq FROM ${WRITES_TABLE} WHERE run = '${this.run}'`, 60_000);
      const have = new Set(rows.map((r) => Number(r[0])));
      const lost: number[] = [];
      for (let seq = 1; seq <= this.ackTimes.length; seq++) if (!have.has(seq)) lost.push(seq);
      return { checked: this.ackTimes.length, lost };
    } finally {
      conn.close();
    }
  }

  private async writeLoop(): Promise<void> {
    for (let seq = 1; this.running; seq++) {
      let attempt = 0;
      let counted = false;
      const failure = (kind: WriterFailure['kind'], message: string): void => {
        if (this.failures.length < 100) this.failures.push({ at: performance.now(), seq, kind, message });
        if (!counted) this.failed++;
        counted = true;
      };
      while (this.running) {
        attempt++;
        try {
          if (this.conn === null || this.conn.closed) {
            if (this.conn !== null) this.reconnects++;
            this.conn = await PgConnection.connect(this.target(), { timeoutMs: 10_000 });
          }
          await this.conn.query(`INSERT INTO ${WRITES_TABLE} (run, seq, payload) VALUES ('${this.run}', ${seq}, '${'x'.repeat(64)}') ON CONFLICT DO NOTHING`, 10_000);
          this.ackTimes.push(performance.now());
          break;
        } catch (err) {
          if (err instanceof PgServerError) failure('error-reply', err.message);
          else if (err instanceof PgConnectionError) {
            this.conn?.close();
            if (err.kind !== 'closed') failure(err.kind, err.message);
            else if (attempt > 1) failure('resend-failed', err.message);
          } else throw err;
          if (!(err instanceof PgConnectionError && err.kind === 'closed' && attempt === 1)) await systemClock.sleep(20);
        }
      }
      await systemClock.sleep(2);
    }
  }
}
