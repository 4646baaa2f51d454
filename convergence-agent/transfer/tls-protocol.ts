/**
 * The messages of the tls transport (carried in tls-frames.ts message frames). One TLS
 * connection is one replication step: `begin` locks the dataset on the receiving agent
 * until `end` or the connection closes. Requests are answered in order; `receive` is
 * answered once `zfs receive` is ready, then data frames follow, then data-end, then a
 * `received` verdict with the exit status. Pure.
 *
 * `begin` is answered with the data channels the receiver offers (`{dataChannels: [...]}`;
 * an older receiver answers null). A `receive` with `dataChannel: 'native-v1'` is answered
 * with `{channel: <32 hex>}` instead of 'ready', and the stream then travels on a data
 * connection of its own (native-pump.ts), not in data frames. A receiver that answers `begin`
 * with `getState: true` also takes `getState` (the dataset and its snapshots in one answer).
 */
import { z } from 'zod';
import { DroverError, type ErrorCode } from '#common/errors.ts';
import { NATIVE_CHANNEL } from './native-pump.ts';

const name = z.string().max(300);

export const Request = z.discriminatedUnion('op', [
  z.object({ id: z.number().int(), op: z.literal('features') }),
  z.object({ id: z.number().int(), op: z.literal('begin'), datasetId: name, waitMs: z.number().int().min(0).max(3_600_000) }),
  z.object({ id: z.number().int(), op: z.literal('getDataset') }),
  z.object({ id: z.number().int(), op: z.literal('listSnapshots') }),
  // `getDataset` and `listSnapshots` in one look (one zfs command): only to a receiver whose
  // `begin` answer says `getState: true` (an older one closes the connection on an unknown op).
  z.object({ id: z.number().int(), op: z.literal('getState') }),
  z.object({ id: z.number().int(), op: z.literal('hold'), snapshot: name, tag: name }),
  z.object({ id: z.number().int(), op: z.literal('release'), snapshot: name, tag: name }),
  z.object({ id: z.number().int(), op: z.literal('rollback'), snapshot: name }),
  z.object({ id: z.number().int(), op: z.literal('setAside'), generation: z.number().int().min(0).max(2 ** 31) }),
  z.object({ id: z.number().int(), op: z.literal('destroySnapshot'), snapshot: name }),
  z.object({ id: z.number().int(), op: z.literal('resumeToken') }),
  z.object({ id: z.number().int(), op: z.literal('abortResume') }),
  z.object({
    id: z.number().int(),
    op: z.literal('receive'),
    resumable: z.boolean(),
    full: z.boolean(),
    dataChannel: z.literal(NATIVE_CHANNEL).optional(),
  }),
  z.object({ id: z.number().int(), op: z.literal('end') }),
]);
export type Request = z.infer<typeof Request>;

export const WireError = z.object({
  code: z.string().regex(/^DROVER_[A-Z0-9_]+$/),
  message: z.string(),
  retryable: z.boolean(),
  detail: z.record(z.string(), z.unknown()).default({}),
});
export type WireError = z.infer<typeof WireError>;

export const Response = z.union([
  z.object({ id: z.number().int(), ok: z.literal(true), value: z.unknown().optional(), event: z.literal('received').optional() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: WireError, event: z.literal('received').optional() }),
]);
export type Response = z.infer<typeof Response>;

export function toWire(err: DroverError): WireError {
  return { code: err.code, message: err.message, retryable: err.retryable, detail: err.detail };
}

export function fromWire(wire: WireError, peer: string): DroverError {
  return new DroverError(wire.code as ErrorCode, `${peer}: ${wire.message}`, { retryable: wire.retryable, detail: { ...wire.detail, peer } });
}

/** `begin`'s answer. */
export const BeginAnswer = z.object({ dataChannels: z.array(z.string()), getState: z.boolean().optional() }).nullable().catch(null);

/** A `receive` answer on the native channel. */
export const ChannelAnswer = z.object({ channel: z.string().regex(/^[0-9a-f]{32}$/) });
