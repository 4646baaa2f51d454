/** Cancellation of long-polls (their query is common/channel.ts `LongPollQuery`). */
import type { FastifyReply } from 'fastify';

/** Why a long-poll's signal aborted: its client went away (a constant: no error object per poll). */
const GONE = Object.freeze({ reason: 'the client went away' });

/**
 * Aborts when the client goes away, or at once when the server is shutting down. Cheap per
 * poll: nothing is created when the answer is sent normally. A poll already waiting when
 * the server shuts down is ended by the views' and routes' `wakeAll` (app.ts preClose), not
 * by this signal: one listener per poll on the shared shutdown signal cost O(polls) each
 * (EventTarget checks for duplicates).
 */
export function pollSignal(reply: FastifyReply, shutdown: AbortSignal): AbortSignal {
  if (shutdown.aborted) return shutdown;
  const poll = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) poll.abort(GONE);
  });
  return poll.signal;
}
