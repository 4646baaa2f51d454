/**
 * Cross-site request refusal (docs/DESIGN.md §26). Once a user's certificate is in a
 * browser, the browser presents it to the control service for any page that sends it a
 * request — a form on another site could post `.../drain` with no body, which needs no CORS
 * preflight. So a write that a browser says comes from another origin is refused (403
 * DROVER_FORBIDDEN, rule `same-origin`) before it is parsed: the browser's own
 * `Sec-Fetch-Site`, or else an `Origin` whose host is not the one asked. The CLI, agents,
 * proxies and plugins send neither header and are not affected; reads are left alone (the
 * browser does not let another origin read the answers: the service sends no CORS headers).
 */
import type { FastifyRequest } from 'fastify';
import { DroverError } from '#common/errors.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const SAME = new Set(['same-origin', 'none']);

/** Why this request is refused as cross-site; null when it is not. Pure. */
export function crossSiteReason(method: string, headers: Record<string, string | string[] | undefined>): string | null {
  if (SAFE.has(method)) return null;
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string' && !SAME.has(site)) return `the browser sent it from another site (Sec-Fetch-Site: ${site})`;
  const origin = headers.origin;
  if (typeof origin !== 'string') return null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `its Origin (${origin}) is not this service`;
  }
  return host === headers.host ? null : `its Origin (${origin}) is not this service (${String(headers.host)})`;
}

/** fastify `onRequest` hook: throws 403 for a cross-site write. */
export async function refuseCrossSite(request: FastifyRequest): Promise<void> {
  const why = crossSiteReason(request.method, request.headers);
  if (why === null) return;
  throw new DroverError('DROVER_FORBIDDEN', `${request.method} ${request.url.split('?')[0]} is refused: ${why}.`, { detail: { rule: 'same-origin' } });
}
