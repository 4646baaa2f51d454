/**
 * Declaring an API route once: method, path, zod schemas of params, query and body, and the
 * answers. The router parses the request with the schemas (a failure is a 400 naming the
 * paths), calls the handler with typed input, and keeps the declaration for the OpenAPI
 * document (openapi.ts), so the document cannot drift from what is served.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

export interface Answer {
  description: string;
  schema?: z.ZodType;
  /** Not JSON (e.g. `text/event-stream`). */
  contentType?: string;
}

export interface RouteSpec<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'DELETE';
  /** fastify syntax: `/v1/configuration/datasets/:dataset_id`. */
  url: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Headers the route reads, for the document. */
  headers?: Record<string, string>;
  answers: Record<number, Answer>;
  bodyLimit?: number;
  /**
   * The handler gets the body as the raw JSON string and validates it itself with `body`
   * (which still documents it): for hot paths that can skip parsing a repeated body.
   */
  rawBody?: boolean;
}

export interface Input<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

export class Router {
  readonly specs: RouteSpec[] = [];

  constructor(private readonly app: FastifyInstance) {}

  route<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
    spec: RouteSpec<P, Q, B>,
    handler: (input: Input<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>,
  ): void {
    this.specs.push(spec as unknown as RouteSpec);
    const options = {
      method: spec.method,
      url: spec.url,
      ...(spec.bodyLimit === undefined ? {} : { bodyLimit: spec.bodyLimit }),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const params = spec.params ? parse(spec.params, request.params, 'params') : request.params;
        const query = spec.query ? parse(spec.query, request.query, 'query') : request.query;
        const body = spec.body && !spec.rawBody ? parse(spec.body, request.body, null) : request.body;
        return handler({ params, query, body, request, reply } as Input<z.output<P>, z.output<Q>, z.output<B>>);
      },
    };
    if (!spec.rawBody) {
      this.app.route(options);
      return;
    }
    // An encapsulated context of its own, so only this route keeps JSON bodies as strings.
    void this.app.register(async (child) => {
      child.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => done(null, text));
      child.route(options);
    });
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string | null): z.output<S> {
  const result = schema.safeParse(value ?? (where === null ? undefined : {}));
  if (result.success) return result.data;
  if (where === null) throw result.error;
  throw new z.ZodError(result.error.issues.map((i) => ({ ...i, path: [where, ...i.path] })));
}

/** Sends a JSON text or its bytes as they are (a cached body), with the status. */
export function sendJson(reply: FastifyReply, text: string | Buffer, status = 200): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(text);
}
