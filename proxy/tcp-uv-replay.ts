/**
 * Replay in the fast engine (docs/DESIGN.md §30, `replay.ts` for which connections): keeping
 * what the client sends until the backend's first byte, handing the connection back when the
 * backend goes before it, and sending the kept bytes to the next backend first. Split from
 * `tcp-uv-relay.ts`, whose relays call these.
 */
import { DroverError } from '#common/errors.ts';
import type { UvHandle, UvReq } from './tcp-uv-binding.ts';
import { closeHandle, PAUSED, relayFailed, RELAYING, type UvInbound } from './tcp-uv-relay.ts';

/**
 * The backend went before answering: drop it and its directions, pause the client (its
 * bytes wait in the kernel) and hand the connection back with what it sent.
 */
export function lost(conn: UvInbound, code: string): void {
  const { engine } = conn;
  const cb = conn.onLost!;
  engine.c.lost++;
  conn.client.readStop();
  for (const d of [conn.up, conn.down]) {
    if (d === null) continue;
    d.stale = true;
    engine.c.bufferedBytes -= d.pending;
    if (d.pending === 0) engine.giveBuffer(d.buf); // else libuv still points into it: let it go
    d.pending = 0;
  }
  conn.up = conn.down = null;
  conn.onLost = null;
  conn.state = PAUSED;
  closeHandle(conn.upstream!);
  conn.upstream = null;
  const target = conn.target;
  const sent = conn.keptLen < 0 ? null : conn.kept!.subarray(0, conn.keptLen);
  cb(conn, sent, new DroverError('DROVER_BACKEND_LOST', `${target?.host}:${target?.port} closed before answering: ${code}`, { retryable: true, detail: { host: target?.host, port: target?.port, code } }));
}

/** Sends what the client sent to the backend that went to the new one; false when that failed. */
export function replayKept(conn: UvInbound, upstream: UvHandle): boolean {
  const { engine } = conn;
  const req = engine.newWriteReq();
  req.oncomplete = onReplayWritten as UvReq['oncomplete'];
  req.owner = conn;
  req.handle = upstream;
  const view = conn.kept!.subarray(0, conn.keptLen);
  (req as { buffer?: Buffer }).buffer = view; // keeps it alive while libuv writes from it
  conn.keptWritten = true;
  if (upstream.writeBuffer(req, view) === 0) return true;
  conn.state = RELAYING;
  lost(conn, 'EPIPE');
  return false;
}

function onReplayWritten(this: UvReq, status: number): void {
  const conn = this.owner as UvInbound;
  if (status === 0 || conn.upstream !== this.handle || conn.state !== RELAYING) return;
  relayFailed(conn, true);
}

/** Keeps `n` bytes the client sent (read into `buf`) for a replay, or gives up past the buffer. */
export function keep(conn: UvInbound, buf: Buffer, n: number): void {
  const kept = conn.kept!;
  if (conn.keptLen + n > kept.length) {
    conn.releaseKept();
    conn.keptLen = -1;
    return;
  }
  buf.copy(kept, conn.keptLen, 0, n);
  conn.keptLen += n;
}
