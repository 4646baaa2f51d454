/** Query and cancellation of long-polls (common/channel.ts: `?after=&wait_ms=`). */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';

export const LongPollQuery = z
  .object({
    /** The version the caller has; absent: answer at once. */
    after: z.coerce.number().int().min(0).optional(),
    /** How long to wait for a change before answering with the same version. */
    wait_ms: z.coerce.number().int().min(0).max(120_000).default(25_000),
  })
  .strict();

/** Aborts when the client goes away or the server shuts down. */
export function pollSignal(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => gone.abort());
  return AbortSignal.any([gone.signal, shutdown]);
}
