/**
 * Node 20's libuv TCP binding, typed for the fast engine (`tcp-uv.ts`). Internal to Node
 * (`process.binding`, DEP0111, documentation-only in Node 20): this is the only file that
 * reaches it, and `loadUvBinding` checks the shape before anything uses it.
 */
import { getSystemErrorName } from 'node:util';

export interface UvHandle {
  owner: unknown;
  onread: () => unknown;
  onconnection: (status: number, client: UvHandle | undefined) => void;
  bind(host: string, port: number): number;
  listen(backlog: number): number;
  connect(req: UvReq, host: string, port: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: UvReq, buf: Uint8Array): number;
  shutdown(req: UvReq): number;
  close(cb?: (this: UvHandle) => void): void;
  reset(cb?: (this: UvHandle) => void): number;
}
export interface UvReq {
  oncomplete: ((this: UvReq, status: number) => void) | null;
  handle?: UvHandle;
  owner?: unknown;
  address?: string;
  port?: number;
  async?: boolean;
}
export interface UvBinding {
  newServer(): UvHandle;
  newSocket(): UvHandle;
  newConnectReq(): UvReq;
  newWriteReq(): UvReq;
  newShutdownReq(): UvReq;
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

export const UV_EOF = -4095;

/** The libuv binding, or null when this Node does not expose it as Node 20 does. */
export function loadUvBinding(): UvBinding | null {
  try {
    const bind = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = bind('tcp_wrap') as { TCP: new (type: number) => UvHandle; TCPConnectWrap: new () => UvReq; constants: { SOCKET: number; SERVER: number } };
    const stream = bind('stream_wrap') as {
      WriteWrap: new () => UvReq;
      ShutdownWrap: new () => UvReq;
      streamBaseState: Int32Array;
      kReadBytesOrError: number;
      kLastWriteWasAsync: number;
    };
    const proto = tcp.TCP.prototype as unknown as Record<string, unknown>;
    for (const m of ['useUserBuffer', 'writeBuffer', 'readStart', 'shutdown', 'connect', 'getsockname', 'reset']) {
      if (typeof proto[m] !== 'function') return null;
    }
    if (!(stream.streamBaseState instanceof Int32Array) || typeof stream.kReadBytesOrError !== 'number') return null;
    return {
      newServer: () => new tcp.TCP(tcp.constants.SERVER),
      newSocket: () => new tcp.TCP(tcp.constants.SOCKET),
      newConnectReq: () => new tcp.TCPConnectWrap(),
      newWriteReq: () => new stream.WriteWrap(),
      newShutdownReq: () => new stream.ShutdownWrap(),
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return null;
  }
}

export function errName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `E${-status}`;
  }
}

export function noop(): void {}
