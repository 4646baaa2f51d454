/**
 * The OpenAPI 3.1 document of the API, built from the route table (common/api-routes.ts)
 * with zod 4's `z.toJSONSchema`; served at `/v1/drover/openapi.json`.
 */
import { z } from 'zod';
import { ROUTES, type RouteSpec } from '#common/api-routes.ts';

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

function parameters(spec: RouteSpec): Json[] {
  const list: Json[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (!schema) continue;
    const json = schemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      list.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema: property });
    }
  }
  for (const [name, description] of Object.entries(spec.headers ?? {})) list.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });
  return list;
}

export function openApiDocument(version: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of Object.values(ROUTES) as RouteSpec[]) {
    const path = spec.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const responses: Json = {};
    for (const [status, answer] of Object.entries(spec.answers)) {
      const type = answer.contentType ?? 'application/json';
      responses[status] = { description: answer.description, ...(answer.schema || answer.contentType ? { content: { [type]: answer.schema ? { schema: schemaOf(answer.schema, 'output') } : {} } } : {}) };
    }
    (paths[path] ??= {})[spec.method.toLowerCase()] = {
      summary: spec.summary,
      tags: [spec.tag],
      // Who may call it (docs/DESIGN.md §23): user, any, or node with the rule that bounds it.
      'x-drover-access': spec.access.role === 'node' ? `node:${spec.access.rule}` : spec.access.role,
      parameters: parameters(spec),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(spec.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'drover control service',
      version,
      description: "Flocker's v1 REST API (same paths, bodies and status codes) plus drover's /v1/drover/ additions and the agent channel. Errors are {description, errors?, code?, detail?}.",
    },
    paths,
  };
}
