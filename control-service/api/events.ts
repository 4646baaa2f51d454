/**
 * `GET /v1/drover/events`: server-sent events — configuration changes, nodes going known or
 * unknown, migration steps, replicas changing state or becoming (or ceasing to be) a problem
 * (docs/DESIGN.md §17). A client that reconnects with `Last-Event-ID` (or `?since=<id>`)
 * first gets what it missed (while still in the ring); `?since=0` replays every event kept,
 * and `?follow=false` ends the stream after the replay (`drover events` without `-f`,
 * docs/DESIGN.md §27).
 */
import type { Control } from '../control.ts';
import type { Recorded } from '../events/event-bus.ts';
import type { Router } from '../http/router.ts';

const KEEP_ALIVE_MS = 15_000;

export function eventRoutes(router: Router, control: Control, shutdown: AbortSignal): void {
  router.handle('events', async ({ query, request, reply }) => {
    const wanted = query.types === undefined ? null : new Set(query.types.split(','));
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    raw.write('retry: 2000\n\n');
    const send = (r: Recorded) => {
      if (wanted && !wanted.has(r.event.type)) return;
      raw.write(`id: ${r.id}\nevent: ${r.event.type}\ndata: ${JSON.stringify({ at: r.at, ...r.event.data })}\n\n`);
    };
    const header = request.headers['last-event-id'];
    const lastId = query.since ?? (header === undefined || header === '' ? NaN : Number(header));
    if (Number.isInteger(lastId)) for (const r of control.events.since(lastId)) send(r);
    if (query.follow === 'false') {
      raw.end();
      return;
    }
    const unsubscribe = control.events.subscribe(send);
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    const end = () => {
      clearInterval(keepAlive);
      unsubscribe();
      shutdown.removeEventListener('abort', end);
      if (!raw.writableEnded) raw.end();
    };
    raw.once('close', end);
    shutdown.addEventListener('abort', end, { once: true });
  });
}
