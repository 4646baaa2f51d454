/**
 * The one error handler (docs/DESIGN.md §11): a DroverError's code picks the status from the
 * registry (common/errors.ts ERRORS; 500 there means "not an answer"), a zod
 * error is a 400 naming every path, fastify's own errors (body too large, bad JSON) keep
 * their status, anything else is logged and answered with a generic 500 and an incident id.
 * Bodies have Flocker's shape `{description, errors?}` plus drover's `code` and `detail`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrorBody } from '#common/api.ts';
import { isDroverError, statusOf } from '#common/errors.ts';

export const SCHEMA_MISMATCH = "The provided JSON doesn't match the required schema.";

/** `path: message` lines, one per zod issue (one per key for unknown keys). */
export function issueLines(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${[...path, key].map(String).join('.')}: unknown field`);
    } else {
      lines.push(`${path.length === 0 ? '(body)' : path.map(String).join('.')}: ${issue.message}`);
    }
  }
  return lines;
}

export function handleError(this: unknown, err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof z.ZodError) {
    void reply.code(400).send({ description: SCHEMA_MISMATCH, errors: issueLines(err.issues), code: 'DROVER_INVALID_REQUEST' } satisfies ErrorBody);
    return;
  }
  const registered = isDroverError(err) ? statusOf(err.code) : 500;
  if (isDroverError(err) && registered !== 500) {
    const issues = err.detail.issues;
    const errors = Array.isArray(issues) ? issues.map((i: { path?: string; message?: string }) => (i.path ? `${i.path}: ${i.message}` : String(i.message))) : undefined;
    const body: ErrorBody = { description: err.message, code: err.code, detail: err.detail, ...(errors ? { errors } : {}) };
    void reply.code(registered).send(body);
    return;
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    void reply.code(status).send({ description: err.message, code: (err as FastifyError).code ?? 'DROVER_INVALID_REQUEST' } satisfies ErrorBody);
    return;
  }
  const incident = randomUUID();
  request.log.error({ err, incident }, 'request failed unexpectedly');
  void reply.code(500).send({ description: `Unexpected error; the control service logged it as incident ${incident}.`, incident, code: 'DROVER_INTERNAL' } satisfies ErrorBody);
}
