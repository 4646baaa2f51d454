/** Flocker's conditional writes: the tag header on answers, the precondition header on writes. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IF_MATCHES_HEADER, TAG_HEADER } from '#common/api.ts';

/** The `X-If-Configuration-Matches` of a write, if it has one. */
export function requestedTag(request: FastifyRequest): string | undefined {
  const value = request.headers[IF_MATCHES_HEADER];
  return typeof value === 'string' ? value : undefined;
}

export function withTag(reply: FastifyReply, tag: string): FastifyReply {
  return reply.header(TAG_HEADER, tag);
}
