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

/** Why a long-poll's signal aborted: its client went away (a constant: no error object per poll). */
const GONE = Object.freeze({ reason: 'the client went away' });

/**
 * Aborts when the client goes away or the server shuts down. Cheap per poll: nothing is
 * created when the answer is sent normally, and the shutdown listener is removed then.
 */
export function pollSignal(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  if (shutdown.aborted) return shutdown;
  const poll = new AbortController();
  const onShutdown = () => poll.abort(shutdown.reason);
  shutdown.addEventListener('abort', onShutdown, { once: true });
  reply.raw.once('close', () => {
    shutdown.removeEventListener('abort', onShutdown);
    if (!reply.raw.writableFinished) poll.abort(GONE);
  });
  return poll.signal;
}
