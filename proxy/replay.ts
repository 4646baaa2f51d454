/**
 * Which connections the proxy may send again to another instance when the one it was relayed
 * to went away before answering (docs/DESIGN.md §30, "Replay"). Pure: bytes in, a verdict out.
 *
 * The engines keep what the client sent (up to their buffer size) until the backend's first
 * byte comes back; when the backend closes or resets before that, they hand the connection
 * back with those bytes and this decides:
 * - nothing was sent: the backend saw no request; connecting elsewhere is a plain retry;
 * - an HTTP/1 request with a method RFC 9110 calls idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
 *   DELETE): doing it twice has the effect of doing it once, which is why HTTP clients
 *   themselves retry these on a connection that closed before the response;
 * - anything else — POST, PATCH, a protocol the proxy does not read (TLS, a database's
 *   wire protocol), or more bytes than were kept — is not replayed: the dead instance may
 *   have acted on it, and a second copy could do it twice. The client gets its connection
 *   closed, as without the proxy, and decides.
 */

/** How many times one connection may be sent to yet another instance. */
export const MAX_REPLAYS = 2;

const IDEMPOTENT = ['GET ', 'HEAD ', 'OPTIONS ', 'TRACE ', 'PUT ', 'DELETE '].map((m) => Buffer.from(m, 'latin1'));

export type ReplayVerdict = 'replay' | 'not-idempotent' | 'too-long' | 'too-many';

/**
 * `sent`: the bytes the client sent so far, or null when they outgrew what the engine keeps.
 * `replays`: how many times this connection was replayed already.
 */
export function replayVerdict(sent: Uint8Array | null, replays: number): ReplayVerdict {
  if (replays >= MAX_REPLAYS) return 'too-many';
  if (sent === null) return 'too-long';
  if (sent.length === 0) return 'replay';
  return IDEMPOTENT.some((m) => startsWith(sent, m)) ? 'replay' : 'not-idempotent';
}

/** True when `bytes` starts with `prefix`, or is the start of it (a request line cut short). */
function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
