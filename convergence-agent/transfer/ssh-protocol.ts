/**
 * What a sending agent may ask of a peer over ssh, where the peer's `authorized_keys` forces
 * every command of drover's key to `drover-receive` (docs/DESIGN.md §24). One definition,
 * used by the sender (ssh-connection.ts, ssh-peer.ts) and by drover-receive (../receive/).
 * Pure.
 *
 * The command a sender asks for (`SSH_ORIGINAL_COMMAND` on the peer) is one of two fixed
 * strings; everything else travels as JSON lines, checked here, never as a command line:
 *
 *   drover-receive session   one per connection; requests and answers, one JSON object a line
 *   drover-receive receive   one stream: a header line, `DROVER-READY`, the zfs stream on
 *                            stdin straight into `zfs receive -u`, then one verdict line
 *   drover-receive resident  many streams, one after another, on one long-lived channel
 *                            (resident-frames.ts): per stream the same header and checks,
 *                            `DROVER-READY`, the stream in length-prefixed frames, a verdict
 *
 * Every request names the pool it expects (the peer refuses any but its own) and a dataset
 * id (a UUID, so the dataset can only be `<pool>/drover/<id>`); snapshot names and hold tags
 * are drover's (`drover-…`). The peer checks all of it again before anything runs.
 */
import { z } from 'zod';
import { DroverError, type ErrorCode } from '#common/errors.ts';

export const RECEIVE_PROGRAM = 'drover-receive';
export const VERBS = ['session', 'receive', 'resident'] as const;
export type ReceiveVerb = (typeof VERBS)[number];

/** The command line a sender asks for: `drover-receive <verb>`. */
export function commandFor(verb: ReceiveVerb): string {
  return `${RECEIVE_PROGRAM} ${verb}`;
}

/**
 * The verb of the command a client asked for (`SSH_ORIGINAL_COMMAND`). Anything but the
 * fixed strings — a shell, `zfs …`, an interactive login (no command) — is refused.
 * @throws DROVER_SSH_RECEIVE_REFUSED
 */
export function parseOriginalCommand(original: string | undefined): ReceiveVerb {
  for (const verb of VERBS) if (original === commandFor(verb)) return verb;
  const shown = original === undefined ? 'an interactive session' : JSON.stringify(original.slice(0, 200));
  throw new DroverError('DROVER_SSH_RECEIVE_REFUSED', `this key may run only ${VERBS.map((v) => `"${commandFor(v)}"`).join(', ')}, not ${shown}`, {
    detail: { command: original?.slice(0, 200) ?? null },
  });
}

/** The longest line either side accepts; a longer one ends the session. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** What drover-receive prints once it holds a receive's header and zfs is about to read the stream. */
export const READY_LINE = 'DROVER-READY';

const name = z.string().max(300);
const base = { id: z.number().int().nonnegative(), pool: name };
const step = { ...base, datasetId: name };

export const SessionRequest = z.discriminatedUnion('op', [
  z.object({ ...base, op: z.literal('features') }),
  /** Creates `<pool>/drover` when missing (a full receive needs it). */
  z.object({ ...base, op: z.literal('prepare') }),
  z.object({ ...step, op: z.literal('getDataset') }),
  z.object({ ...step, op: z.literal('listSnapshots') }),
  /** The dataset (null: none) and its drover snapshots ([] then), in one zfs command. */
  z.object({ ...step, op: z.literal('getState') }),
  z.object({ ...step, op: z.literal('hold'), snapshot: name, tag: name }),
  z.object({ ...step, op: z.literal('release'), snapshot: name, tag: name }),
  z.object({ ...step, op: z.literal('rollback'), snapshot: name }),
  /** Moves a read-only (diverged) copy aside under `<pool>/drover-diverged/`; never destroys. */
  z.object({ ...step, op: z.literal('setAside'), generation: z.number().int().min(0).max(2 ** 31) }),
  z.object({ ...step, op: z.literal('destroySnapshot'), snapshot: name }),
  z.object({ ...step, op: z.literal('resumeToken') }),
  z.object({ ...step, op: z.literal('abortResume') }),
]);
export type SessionRequest = z.infer<typeof SessionRequest>;

export const ReceiveHeader = z.discriminatedUnion('op', [
  z.object({ op: z.literal('receive'), pool: name, datasetId: name, resumable: z.boolean(), full: z.boolean() }),
  /** The size of the pipe `zfs receive` would read from (a diagnostic: the pipe is grown to 1 MiB). */
  z.object({ op: z.literal('pipe-size') }),
]);
export type ReceiveHeader = z.infer<typeof ReceiveHeader>;

export const WireError = z.object({
  code: z.string().regex(/^DROVER_[A-Z0-9_]+$/),
  message: z.string(),
  retryable: z.boolean(),
  detail: z.record(z.string(), z.unknown()).default({}),
});
export type WireError = z.infer<typeof WireError>;

/** A session's answer (`id` of the request) or a receive's verdict (no id). */
export const Answer = z.union([
  z.object({ id: z.number().int().optional(), ok: z.literal(true), value: z.unknown().optional() }),
  z.object({ id: z.number().int().optional(), ok: z.literal(false), error: WireError }),
]);
export type Answer = z.infer<typeof Answer>;

export function toWire(err: DroverError): WireError {
  return { code: err.code, message: err.message, retryable: err.retryable, detail: err.detail };
}

export function fromWire(wire: WireError, peer: string): DroverError {
  return new DroverError(wire.code as ErrorCode, `${peer}: ${wire.message}`, { retryable: wire.retryable, detail: { ...wire.detail, peer } });
}

/** One JSON line. */
export function line(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * Splits a byte stream into lines (without the newline), refusing one longer than
 * MAX_LINE_BYTES. Feed chunks; each complete line goes to `onLine`.
 * @throws DROVER_SSH_PROTOCOL on an over-long line
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onLine: (text: string) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const text = this.pendingBytes === 0 ? piece.toString('utf8') : Buffer.concat([...this.pending, piece]).toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
      this.onLine(text);
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > MAX_LINE_BYTES) throw new DroverError('DROVER_SSH_PROTOCOL', `a line longer than ${MAX_LINE_BYTES} bytes`);
    }
  }
}

/** JSON.parse that answers undefined for text that is not JSON (a peer's line). */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A line from the peer's drover-receive (`what`: the verb run) that the protocol has no place for. */
export function unexpected(peer: string, text: string, what = 'drover-receive'): DroverError {
  return new DroverError('DROVER_SSH_PROTOCOL', `unexpected output from ${what} on ${peer}: ${text.slice(0, 100)}`);
}
