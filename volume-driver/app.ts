/**
 * The plugin's HTTP app: Docker's v1 volume plugin endpoints over a VolumeDriver. It never
 * listens (docs/DESIGN.md §13: build, then `inject()`); `plugin-server.ts` puts it on the socket.
 *
 * Docker 20.10 sends each call as `POST /<Method>` with a JSON body ending in "\n" and **no
 * Content-Type** (reference §1.2): fastify would answer 415, so one catch-all parser takes
 * every body as text. Every failure is HTTP 200 + `{"Err": "…"}`: Docker shows that text
 * as it is, and does not retry it.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { isDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { VolumeDriver } from './driver.ts';
import { CreateRequest, MountRequest, NameRequest } from './wire.ts';
import { NO_PLUGIN_METRICS, type PluginMetrics } from './metrics.ts';

export interface AppOptions {
  driver: VolumeDriver;
  log: Logger;
  /** Where calls are counted and mounts timed (docs/DESIGN.md §25). */
  metrics?: PluginMetrics;
}

type Handler = (body: unknown) => Promise<object>;

export function buildApp({ driver, log, metrics = NO_PLUGIN_METRICS }: AppOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, return503OnClosing: false });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  const routes: Record<string, Handler> = {
    '/Plugin.Activate': async () => ({ Implements: ['VolumeDriver'] }),
    '/VolumeDriver.Capabilities': async () => ({ Capabilities: { Scope: 'global' } }),
    '/VolumeDriver.Create': async (body) => {
      const req = parse(CreateRequest, body);
      await driver.create(req.Name, req.Opts ?? null);
      return { Err: '' };
    },
    '/VolumeDriver.Get': async (body) => ({ Volume: await driver.get(parse(NameRequest, body).Name), Err: '' }),
    '/VolumeDriver.List': async () => ({ Volumes: await driver.list(), Err: '' }),
    '/VolumeDriver.Path': async (body) => ({ Mountpoint: await driver.path(parse(NameRequest, body).Name), Err: '' }),
    '/VolumeDriver.Mount': async (body) => {
      const req = parse(MountRequest, body);
      return { Mountpoint: await driver.mount(req.Name, req.ID), Err: '' };
    },
    '/VolumeDriver.Unmount': async (body) => {
      const req = parse(MountRequest, body);
      await driver.unmount(req.Name, req.ID);
      return { Err: '' };
    },
    '/VolumeDriver.Remove': async (body) => {
      await driver.remove(parse(NameRequest, body).Name);
      return { Err: '' };
    },
  };

  for (const [path, handler] of Object.entries(routes)) {
    app.post(path, async (request, reply) => {
      const started = performance.now();
      let answer: object;
      try {
        answer = await handler(decode(request.body));
      } catch (err) {
        answer = { Err: errText(err, path, log) };
      }
      const err = (answer as { Err?: string }).Err || undefined;
      const ms = performance.now() - started;
      metrics.call(path.slice(1), err === undefined ? 'ok' : 'error', ms / 1000);
      log.debug({ call: path.slice(1), ms: Math.round(ms), err }, 'call answered');
      return reply.header('content-type', 'application/vnd.docker.plugins.v1.2+json').send(JSON.stringify(answer) + '\n');
    });
  }

  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).header('content-type', 'application/json').send(JSON.stringify({ Err: `the drover volume plugin has no endpoint ${request.method} ${request.url}` })),
  );
  return app;
}

class BadRequest extends Error {}

/** Docker's body as an object: `{}` for an empty body (Plugin.Activate sends none). */
function decode(body: unknown): unknown {
  if (typeof body !== 'string') return body ?? {};
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequest(`request body is not JSON: ${JSON.stringify(body.slice(0, 80))}`);
  }
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw new BadRequest(result.error.issues.map((i) => i.message).join('; '));
  return result.data;
}

function errText(err: unknown, path: string, log: Logger): string {
  if (err instanceof BadRequest) return `bad request to ${path.slice(1)}: ${err.message}`;
  if (isDroverError(err)) {
    if (err.code.startsWith('DROVER_CONTROL_')) log.warn({ err, call: path.slice(1) }, 'control service call failed');
    return err.message;
  }
  const incident = randomUUID().slice(0, 8);
  log.error({ err, incident, call: path.slice(1) }, 'call failed unexpectedly');
  return `internal error in the drover volume plugin (incident ${incident}); see the plugin's log`;
}
