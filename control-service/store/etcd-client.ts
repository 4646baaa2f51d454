/**
 * The one adapter of the `etcd3` library (docs/DESIGN.md §28): transactions, reads at a
 * revision, a key's watch, leases. Keys and values are strings and Buffers here; etcd's
 * errors are classified once, below, into DroverError codes (nothing above parses them):
 * `DROVER_ETCD_COMPACTED` (a read or watch asked for a revision etcd compacted away) and
 * `DROVER_ETCD_UNAVAILABLE` (retryable: no member answered, or a deadline passed).
 */
import { readFileSync } from 'node:fs';
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type IRequestOp, type IResponseOp, type Lease, type Watcher } from 'etcd3';
import { DroverError } from '#common/errors.ts';

export interface EtcdConnection {
  /** `http(s)://host:port` of the members (a list: the client moves to another when one stops answering). */
  endpoints: readonly string[];
  /** TLS client certificate to etcd: the files' paths (all three, or none). */
  tls?: { ca: string; cert: string; key: string } | undefined;
  /** Deadline of each call, ms. Default 5000. */
  callTimeoutMs?: number;
}

export interface Kv {
  key: string;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  /** The lease the key is attached to ('0': none). */
  lease: string;
}

export type TxnOp = { put: string; value: string | Buffer; lease?: string } | { delete: string } | { get: string };
/** A condition of a transaction: the key's create or mod revision equals `revision` (0: the key does not exist). */
export interface TxnCompare {
  key: string;
  target: 'create' | 'mod';
  revision: number;
}

export interface TxnResult {
  succeeded: boolean;
  /** etcd's revision after the transaction (the revision a successful write created). */
  revision: number;
  /** Per op of the branch taken: the keys a `get` found (empty for put and delete). */
  found: (Kv | null)[];
}

export interface LeaseHandle {
  readonly id: string;
  /** Renews once; resolves with the TTL granted. @throws DROVER_ETCD_LEASE_LOST when it expired. */
  keepAlive(timeoutMs: number): Promise<number>;
  revoke(): Promise<void>;
}

const COMPACTED = /required revision has been compacted/;

/** A fault-handling policy that only calls through (etcd3 calls nothing else of it). */
const PASS_THROUGH = { execute: <T>(fn: (context: { signal: AbortSignal }) => T) => Promise.resolve().then(() => fn({ signal: new AbortController().signal })) } as unknown as NonNullable<NonNullable<NonNullable<ConstructorParameters<typeof Etcd3>[0]>['faultHandling']>['global']>;

export class EtcdClient {
  private readonly client: Etcd3;
  private readonly callTimeoutMs: number;
  private closed = false;

  constructor(readonly connection: EtcdConnection) {
    this.callTimeoutMs = connection.callTimeoutMs ?? 5000;
    const tls = connection.tls;
    this.client = new Etcd3({
      hosts: [...connection.endpoints],
      ...(tls ? { credentials: { rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) } } : {}),
      dialTimeout: this.callTimeoutMs,
      // No per-member circuit breaker: etcd3's default opens after a few failures of any kind,
      // and deadlines missed on a loaded machine then refused every call, the leader's renewals
      // included. Calls are retried (the library's global policy) on another member instead.
      faultHandling: { host: () => PASS_THROUGH },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.callTimeoutMs }),
    });
  }

  /** One transaction: when every compare holds, `success` is applied, else `failure`. */
  async txn(compare: readonly TxnCompare[], success: readonly TxnOp[], failure: readonly TxnOp[] = []): Promise<TxnResult> {
    const res = await this.call('txn', () =>
      this.client.kv.txn({
        compare: compare.map((c) => ({ key: Buffer.from(c.key), target: c.target === 'create' ? 'Create' : 'Mod', result: 'Equal', ...(c.target === 'create' ? { create_revision: c.revision } : { mod_revision: c.revision }) })),
        success: success.map(requestOp),
        failure: failure.map(requestOp),
      }),
    );
    return { succeeded: res.succeeded, revision: Number(res.header.revision), found: (res.responses ?? []).map(foundOf) };
  }

  /** The keys' values at `revision` (latest when absent), in one consistent read. */
  async getMany(keys: readonly string[], revision?: number): Promise<{ found: (Kv | null)[]; revision: number }> {
    const res = await this.call('range', () => this.client.kv.txn({ success: keys.map((key) => ({ request_range: { key: Buffer.from(key), ...(revision ? { revision } : {}) } })) }));
    return { found: (res.responses ?? []).map(foundOf), revision: Number(res.header.revision) };
  }

  /** Every key under `prefix` (keys only when `keysOnly`), at the latest revision. */
  async getPrefix(prefix: string, keysOnly = false): Promise<{ found: Kv[]; revision: number }> {
    const start = Buffer.from(prefix);
    const res = await this.call('range', () => this.client.kv.range({ key: start, range_end: prefixEnd(start), keys_only: keysOnly }));
    return { found: (res.kvs ?? []).map(kvOf), revision: Number(res.header.revision) };
  }

  /**
   * Watches one key from `fromRevision`. `onEvent` gets each put (a Kv) or delete (null);
   * `onLost` is called once when the watch cannot carry on (compacted: `DROVER_ETCD_COMPACTED`),
   * after which the watch is cancelled and the caller starts another.
   */
  watchKey(key: string, fromRevision: number, onEvent: (kv: Kv | null, revision: number) => void, onLost: (err: DroverError) => void): { cancel(): Promise<void> } {
    let watcher: Watcher | null = null;
    let cancelled = false;
    const pending = this.client
      .watch()
      .key(key)
      .startRevision(String(fromRevision))
      .create()
      .then((w) => {
        watcher = w;
        if (cancelled) return void w.cancel().catch(() => undefined);
        w.on('put', (kv) => onEvent(kvOf(kv), Number(kv.mod_revision)));
        w.on('delete', (kv) => onEvent(null, Number(kv.mod_revision)));
        w.on('error', (err) => {
          if (cancelled) return;
          cancelled = true;
          void w.cancel().catch(() => undefined);
          onLost(classify('watch', err));
        });
      })
      .catch((err: unknown) => {
        if (!cancelled) onLost(classify('watch', err));
      });
    return {
      cancel: async () => {
        cancelled = true;
        await pending;
        await (watcher as Watcher | null)?.cancel().catch(() => undefined);
      },
    };
  }

  /** A new lease of `ttlSeconds`, renewed only when asked (`keepAlive`). */
  async grantLease(ttlSeconds: number): Promise<LeaseHandle> {
    const lease: Lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // losses are reported by keepAlive's rejection
    const id = await this.call('lease', () => lease.grant());
    return {
      id,
      keepAlive: async (timeoutMs) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          // The deadline is enforced here too: a keep-alive stream that never answers must not
          // hold the caller past it (seen under load: renewals that neither answered nor failed).
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          });
          const res = await Promise.race([lease.keepaliveOnce({ deadline: Date.now() + timeoutMs }), timeout]);
          return Number(res.TTL);
        } catch (err) {
          if (err instanceof EtcdLeaseInvalidError) throw new DroverError('DROVER_ETCD_LEASE_LOST', `etcd lease ${id} expired`, { cause: err });
          throw classify('lease keep-alive', err);
        } finally {
          clearTimeout(timer);
        }
      },
      revoke: async () => {
        await lease.revoke({ deadline: Date.now() + this.callTimeoutMs }).catch(() => undefined);
      },
    };
  }

  /** Seconds left on lease `id` (-1: gone). */
  async leaseTtl(id: string): Promise<number> {
    const res = await this.call('lease', () => this.client.leaseClient.leaseTimeToLive({ ID: id }));
    return Number(res.TTL);
  }

  /** Compacts etcd's history up to `revision` (what `etcdctl compact` does). */
  async compact(revision: number): Promise<void> {
    await this.call('compact', () => this.client.kv.compact({ revision }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classify(what, err);
    }
  }
}

function requestOp(op: TxnOp): IRequestOp {
  if ('put' in op) return { request_put: { key: Buffer.from(op.put), value: Buffer.isBuffer(op.value) ? op.value : Buffer.from(op.value), ...(op.lease ? { lease: op.lease } : {}) } };
  if ('delete' in op) return { request_delete_range: { key: Buffer.from(op.delete) } };
  return { request_range: { key: Buffer.from(op.get) } };
}

function foundOf(res: IResponseOp): Kv | null {
  const kv = res.response_range?.kvs?.[0];
  return kv ? kvOf(kv) : null;
}

function kvOf(kv: IKeyValue): Kv {
  return { key: kv.key.toString(), value: kv.value, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), lease: String(kv.lease ?? '0') };
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function classify(what: string, err: unknown): DroverError {
  if (err instanceof DroverError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (COMPACTED.test(message)) return new DroverError('DROVER_ETCD_COMPACTED', `etcd ${what}: the revision asked for was compacted`, { cause: err });
  return new DroverError('DROVER_ETCD_UNAVAILABLE', `etcd ${what} failed: ${message}`, { cause: err, retryable: true });
}
