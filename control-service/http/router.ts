/**
 * Registers the handler of each route of the one route table (common/api-routes.ts) by its
 * key: the method, path and schemas come from the table, never from a second declaration.
 * The router parses the request with the route's schemas (a failure is a 400 naming the
 * paths) and calls the handler with typed input; `served` lists the keys registered, so a
 * test can check that the table and what is served are the same.
 */
import type { FastifyBodyParser, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ROUTES, type RouteKey, type Routes } from '#common/api-routes.ts';
import type { Identity } from '#common/identity.ts';
import { PLAIN_LOOPBACK, type AccessRequest } from './authorize.ts';

/**
 * Who is calling, and may they (http/authorize.ts): `role` runs before the request is
 * parsed (a node on a user-only route is refused whatever it sent), `rules` after.
 */
export interface Guard {
  role(key: RouteKey, request: FastifyRequest): Identity;
  rules(key: RouteKey, identity: Identity, input: AccessRequest): void;
}

/** Server-side settings of one route, beside the table's contract. */
export interface ServeOptions {
  bodyLimit?: number;
  /**
   * The handler gets the body as the raw JSON string and validates it itself with the
   * table's `body` schema (which still documents it): for hot paths that can skip parsing
   * a repeated body.
   */
  rawBody?: boolean;
}

type Out<R, F extends string> = R extends { [K in F]: infer S extends z.ZodType } ? z.output<S> : unknown;

export interface Input<K extends RouteKey> {
  params: Out<Routes[K], 'params'>;
  query: Out<Routes[K], 'query'>;
  /** The parsed body; with `rawBody`, the JSON text as it came. */
  body: Out<Routes[K], 'body'>;
  /** The caller, from its certificate (docs/DESIGN.md §23). */
  identity: Identity;
  request: FastifyRequest;
  reply: FastifyReply;
}

export class Router {
  readonly served: RouteKey[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly guard: Guard | null = null,
  ) {}

  handle<K extends RouteKey>(key: K, handler: (input: Input<K>) => Promise<unknown>, serve: ServeOptions = {}): void {
    const spec: { method: string; path: string; params?: z.ZodType; query?: z.ZodType; body?: z.ZodType } = ROUTES[key];
    this.served.push(key);
    const options = {
      method: spec.method,
      url: spec.path,
      config: { takesBody: spec.body !== undefined } satisfies RouteConfig,
      ...(serve.bodyLimit === undefined ? {} : { bodyLimit: serve.bodyLimit }),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const identity = this.guard ? this.guard.role(key, request) : PLAIN_LOOPBACK;
        const params = spec.params ? parse(spec.params, request.params, 'params') : request.params;
        const query = spec.query ? parse(spec.query, request.query, 'query') : request.query;
        const body = spec.body && !serve.rawBody ? parse(spec.body, request.body, null) : request.body;
        this.guard?.rules(key, identity, { params, query, body });
        return handler({ params, query, body, identity, request, reply } as Input<K>);
      },
    };
    if (!serve.rawBody) {
      this.app.route(options);
      return;
    }
    // An encapsulated context of its own, so only this route keeps JSON bodies as strings.
    void this.app.register(async (child) => {
      child.removeContentTypeParser('application/json');
      child.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => done(null, text));
      child.route(options);
    });
  }
}

/** What the router tells the JSON parser of a route (`request.routeOptions.config`). */
export interface RouteConfig {
  /** The table gives the route a body schema. */
  takesBody: boolean;
}

/**
 * The JSON body parser (replacing fastify's default, with the same protection against
 * prototype poisoning), as Flocker reads bodies: a route without a body (every GET and
 * DELETE, and drover's actions) ignores whatever is sent, so `Content-Type:
 * application/json` with an empty body is fine there; a route with one gets `undefined` for
 * an empty body, which the router refuses with the 400 naming the fields it lacks.
 */
export function jsonBodyParser(app: FastifyInstance): FastifyBodyParser<string> {
  const json = app.getDefaultJsonParser('error', 'error');
  return (request, text, done) => {
    if ((request.routeOptions.config as Partial<RouteConfig>).takesBody === false || text.length === 0) {
      done(null, undefined);
      return;
    }
    json(request, text, done);
  };
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string | null): z.output<S> {
  // A JSON body of `null` stays null (a replication policy of null stops replicating).
  const result = schema.safeParse(where === null ? value : (value ?? {}));
  if (result.success) return result.data;
  if (where === null && value === undefined) throw missingBody(schema);
  if (where === null) throw result.error;
  throw new z.ZodError(result.error.issues.map((i) => ({ ...i, path: [where, ...i.path] })));
}

/** No body (or an empty one) where the route takes one: the fields an empty object lacks. */
function missingBody(schema: z.ZodType): z.ZodError {
  const empty = schema.safeParse({});
  if (!empty.success) return empty.error;
  return new z.ZodError([{ code: 'custom', path: [], message: 'a JSON body is required', input: undefined }]);
}

/** Sends a JSON text or its bytes as they are (a cached body), with the status. */
export function sendJson(reply: FastifyReply, text: string | Buffer, status = 200): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(text);
}
