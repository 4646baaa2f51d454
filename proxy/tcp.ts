/**
 * The TCP engine contract: what the proxy core needs from sockets, and nothing more.
 *
 * Three engines implement it, with one contract suite (`tcp.int.test.ts`) run against all:
 * - `tcp-uv.ts` drives libuv's TCP handles directly (no streams, no per-chunk allocation,
 *   one fixed buffer per direction). It is the fast one and the default.
 * - `tcp-net.ts` uses the public `node:net` API. It is the portable fallback, for a Node
 *   where `process.binding('tcp_wrap')` is gone.
 * - `tcp-native.ts` gives each port's socket to a C relay (native/drover-relay.c) that
 *   accepts, connects and relays by itself while the route forwards (`TcpListener.route`);
 *   what it does not serve (a hold, a connect no instance answers) comes back as an `Inbound`
 *   of the uv engine.
 *
 * Both relay bytes the same way: a connection's two directions are independent; EOF on one
 * side half-closes the other (shutdown after pending writes); a read or write error on either
 * side ends both; at most one buffer per direction is in flight, and reading that side stops
 * until it is written, so a slow reader bounds the proxy's memory.
 */
import type { DroverError } from '#common/errors.ts';

export interface Endpoint {
  host: string;
  port: number;
}

/** Live counts, for leak checks, the status line and tests. */
export interface TcpCounts {
  listeners: number;
  /** Client connections accepted and not yet closed (held, connecting or relaying). */
  inbound: number;
  /** Backend connections connecting or open. */
  outbound: number;
  /** Bytes read from one side whose write to the other side has not completed. */
  bufferedBytes: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Relays that ended with an error (reset, broken pipe) rather than two clean EOFs. */
  relayErrors: number;
  /** Bytes handed to the other side's socket since start, both directions (the metrics' bytes). */
  relayedBytes: number;
  /** Connections handed back to `onLost` because their backend went before answering. */
  lost: number;
}

/**
 * Where a port's connections go, for an engine that forwards by itself (`TcpListener.route`):
 * `targets` null hands every connection to `onInbound` (a hold, or a target the engine cannot
 * reach by itself); `replay` keeps a first request for another instance (docs/DESIGN.md §30);
 * `keep` non-null closes the port's relays to any target not in it (cutStale, DESIGN.md).
 */
export interface ListenerRoute {
  targets: Endpoint[] | null;
  replay: boolean;
  keep: Endpoint[] | null;
}

/** What an engine that forwards by itself did with a port's connections, in batches. */
export type ListenerCounted = (event: 'forwarded' | 'refused' | 'replayed', n: number) => void;

/**
 * An accepted client connection. It is paused: nothing is read from it (what the client
 * sends waits in the kernel) until `forward` has connected to a backend.
 */
export interface Inbound {
  /** True once the client side is closed (destroyed, or its relay ended). */
  readonly closed: boolean;
  /** The owner's mark (the proxy core keeps its accept time here); the engine never reads it. */
  since: number;
  /** How long the connection waited before it reached `onInbound` (the native relay had it). */
  readonly waitedMs?: number;
  /** The native relay counted it as forwarded already: every instance refused its connect. */
  readonly forwarded?: boolean;
  /**
   * Connects to `target` and relays both ways until both directions are done. When the connect
   * fails (refused, unreachable, or not done within `connectTimeoutMs`) the inbound stays
   * accepted and paused and `onConnectFailed` gets a retryable `DROVER_BACKEND_UNREACHABLE`;
   * the caller retries or destroys. Calling it twice without a failure in between is a bug.
   *
   * With `onLost` (several instances, docs/DESIGN.md §30) the engine also keeps what the client
   * sends, up to its buffer size, until the backend's first byte comes back. When the backend
   * closes or fails before that byte, the client is not told: the backend is dropped, the
   * inbound is paused again and `onLost` gets the bytes sent so far (null when more than were
   * kept). The caller then `forward`s again — those bytes go to the new backend first, then
   * the relay goes on (a client's half-close included) — or destroys. Without `onLost`, or
   * once a byte came back, nothing is kept and a backend's end is relayed as usual.
   */
  forward(target: Endpoint, connectTimeoutMs: number, onConnectFailed: ConnectFailed, onLost?: UpstreamLost): void;
  /** Closes the client connection (and its backend, if any). Idempotent. */
  destroy(): void;
}

/** Called with the inbound (still paused) whose backend connect failed; may run synchronously. */
export type ConnectFailed = (conn: Inbound, err: DroverError) => void;

/** Called with the inbound (paused again) whose backend went before answering; `sent` as kept. */
export type UpstreamLost = (conn: Inbound, sent: Uint8Array | null, err: DroverError) => void;

export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting (the port closes). Connections it accepted go on. Idempotent. */
  close(): Promise<void>;
  /**
   * Present when the engine forwards by itself (native): from now on new connections go as
   * `route` says without reaching `onInbound`. Resolves once that is in effect.
   */
  route?(route: ListenerRoute): Promise<void>;
}

export interface TcpEngine {
  readonly name: 'uv' | 'net' | 'native';
  /**
   * Listens on `host:port` (port 0 picks one). Rejects with `DROVER_LISTEN_FAILED` (retryable
   * for EADDRINUSE) naming the address.
   */
  listen(host: string, port: number, onInbound: (conn: Inbound) => void, counted?: ListenerCounted): Promise<TcpListener>;
  counts(): TcpCounts;
  /** Closes every listener and connection now; for the end of a process or a test. */
  destroyAll(): Promise<void>;
}

export interface TcpEngineOptions {
  /** Size of each direction's read buffer; HAProxy's default is 16 KiB. */
  bufferBytes?: number;
  /** listen(2) backlog: connections the kernel queues before the proxy accepts them. */
  backlog?: number;
  /** Native engine: the relay's threads (the proxy's `workers`) and its connect timeout. */
  threads?: number;
  connectTimeoutMs?: number;
}

/** Error names a backend connect can fail with and still succeed a moment later. */
export const RETRYABLE_CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ECONNABORTED',
]);
