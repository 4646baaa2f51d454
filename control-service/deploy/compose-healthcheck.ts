import { z } from 'zod';
import type { HealthCheck } from '#common/model.ts';
import type { Scope } from './scope.ts';
import { parseDuration } from '#common/units.ts';

/**
 * A Compose duration between `min` seconds and 1h. Checked inside the schema, so that a bad
 * interval, a bad timeout and bad retries are all named in one refusal.
 */
function durationIn(min: number) {
  return z.union([z.string(), z.number()], { error: 'must be a duration ("10s", "1m30s", "500ms")' }).superRefine((raw, ctx) => {
    const s = parseDuration(raw);
    if (s === null) ctx.addIssue({ code: 'custom', message: `"${raw}" is not a duration ("10s", "1m30s", "500ms")` });
    else if (s < min || s > 3600) ctx.addIssue({ code: 'custom', message: `"${raw}" must be between ${min}s and 1h` });
  });
}
const RETRIES = { error: 'must be a whole number from 1 to 100' };
const Timing = {
  interval: durationIn(0.1).optional(),
  timeout: durationIn(0.1).optional(),
  retries: z.number(RETRIES).int(RETRIES).min(1, RETRIES).max(100, RETRIES).optional(),
  start_period: durationIn(0).optional(),
};

const ComposeHealth = z
  .object({ test: z.union([z.string(), z.array(z.string())]).optional(), disable: z.boolean().optional(), ...Timing })
  .strict();

// A YAML number or boolean is refused rather than turned into a string: `expect: 1` is more
// likely a mistake than a probe for the text "1".
const ProbeText = z
  .string({ error: 'must be a string (quote it)' })
  .min(1, { error: 'must not be empty' })
  .max(1024, { error: 'must be at most 1024 characters' })
  .optional();

const DroverHealth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http'), port: z.number().int().min(1).max(65535), path: z.string().startsWith('/').optional(), ...Timing }).strict(),
  z.object({ type: z.literal('tcp'), port: z.number().int().min(1).max(65535), send: ProbeText, expect: ProbeText, ...Timing }).strict(),
]);

const REASONS = {
  start_interval: 'needs Docker API 1.44; Docker 20.10 has no start interval (use a short "interval")',
  send: 'only a tcp check sends (x-drover-healthcheck: { type: tcp, port, send, expect })',
  expect: 'only a tcp check expects (x-drover-healthcheck: { type: tcp, port, send, expect })',
};

/**
 * Compose `healthcheck:` → an exec health check. `test: ["CMD", "redis-cli", "ping"]` runs
 * that argv in the container; `["CMD-SHELL", "…"]` or a plain string runs through the
 * container's own `/bin/sh -c`, as Docker does; `["NONE"]` or `disable: true` means none.
 * Timing keeps Docker's defaults (interval 30s, timeout 30s, retries 3, start_period 0), so
 * a file behaves as it did under Compose.
 */
export function readComposeHealthcheck(scope: Scope, value: unknown): HealthCheck | undefined {
  const key = ['healthcheck'];
  const spec = scope.shape(key, ComposeHealth, value, REASONS);
  if (spec.disable === true) return undefined;
  if (spec.test === undefined) scope.failKey([...key, 'test'], 'is required (or "disable: true")');
  const test = typeof spec.test === 'string' ? ['CMD-SHELL', spec.test] : spec.test;
  const [kind, ...rest] = test;
  if (kind === 'NONE') return undefined;
  let command: string[];
  if (kind === 'CMD') command = rest;
  else if (kind === 'CMD-SHELL') command = rest.length === 0 ? [] : ['/bin/sh', '-c', rest.join(' ')];
  else return scope.failKey([...key, 'test'], 'must start with "CMD", "CMD-SHELL" or "NONE"');
  if (command.length === 0 || command[0] === '') scope.failKey([...key, 'test'], 'names no command');
  return { type: 'exec', command, ...timing(spec, { interval: 30, timeout: 30 }) };
}

/**
 * `x-drover-healthcheck:` — a check drover runs from the node, not inside the container:
 * `{ type: http, port, path }` (200–399 is healthy) or `{ type: tcp, port, send, expect }`;
 * `port` is the container port. A tcp check without `expect` is healthy once it connects (and
 * has written `send`, if given); with `expect`, once the answer's first line contains that string, as
 * HAProxy's `tcp-check send` / `expect string`: `{ type: tcp, port: 6379, send: "PING\r\n",
 * expect: "+PONG" }` (a YAML double-quoted "\r\n" is CR LF). Same timing keys as Compose,
 * with Kubernetes' defaults (10s, 1s, 3). No exec is needed, and none of its cost per probe.
 */
export function readDroverHealthcheck(scope: Scope, value: unknown): HealthCheck {
  const key = ['x-drover-healthcheck'];
  const spec = scope.shape(key, DroverHealth, value, REASONS);
  const t = timing(spec, { interval: 10, timeout: 1 });
  if (spec.type === 'http') return { type: 'http', port: spec.port, path: spec.path ?? '/', ...t };
  return {
    type: 'tcp',
    port: spec.port,
    ...(spec.send === undefined ? {} : { send: spec.send }),
    ...(spec.expect === undefined ? {} : { expect: spec.expect }),
    ...t,
  };
}

interface TimingIn {
  interval?: string | number | undefined;
  timeout?: string | number | undefined;
  retries?: number | undefined;
  start_period?: string | number | undefined;
}

/** The timing in seconds; `spec` passed `Timing`, so every duration given parses and is in range. */
function timing(spec: TimingIn, defaults: { interval: number; timeout: number }) {
  const seconds = (name: 'interval' | 'timeout' | 'start_period', fallback: number): number => {
    const raw = spec[name];
    return raw === undefined ? fallback : parseDuration(raw)!;
  };
  return {
    initial_delay_seconds: seconds('start_period', 0),
    period_seconds: seconds('interval', defaults.interval),
    timeout_seconds: seconds('timeout', defaults.timeout),
    failure_threshold: spec.retries ?? 3,
  };
}
