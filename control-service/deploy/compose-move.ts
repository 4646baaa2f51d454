/**
 * A Compose service's `x-drover: { move: … }` (docs/DESIGN.md §5) → its application's
 * move policy. Pure; a bad value throws `DROVER_BAD_CONFIG` naming the file, the service and
 * the key.
 *
 * ```yaml
 * x-drover:
 *   move:
 *     # run in the container while it still serves, right before the last pre-copy round and
 *     # the stop (exec, no shell: a string is split into words as `command:` is)
 *     before_stop: psql -U postgres -c CHECKPOINT
 *     # or with a timeout (Compose duration, default 60s, 1s..1h):
 *     before_stop: { exec: ["redis-cli", "BGREWRITEAOF"], timeout: 30s }
 * ```
 */
import { z } from 'zod';
import { parseDuration } from '#common/units.ts';
import type { MovePolicy } from '#common/model.ts';
import type { Scope } from './scope.ts';
import { splitShellWords } from './shell-words.ts';

const Argv = z.union([z.string(), z.array(z.string())]);
const ComposeMove = z
  .object({
    before_stop: z.union([Argv, z.object({ exec: Argv, timeout: z.union([z.string(), z.number()]).optional() }).strict()]).optional(),
  })
  .strict();

const REASONS = {
  after_start: 'drover has no after-start hook: a health check says when the application is ready',
  command: 'write "before_stop: <command>" or "before_stop: { exec: <command>, timeout: 60s }"',
};

/** Reads `x-drover.move` (found at `key`). */
export function readComposeMove(scope: Scope, key: readonly PropertyKey[], value: unknown): MovePolicy {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) scope.failKey(key, 'must be a mapping: { before_stop: <command> }');
  const spec = scope.shape(key, ComposeMove, value, REASONS);
  const policy: MovePolicy = {};
  const hook = spec.before_stop;
  if (hook !== undefined) {
    const long = typeof hook === 'object' && !Array.isArray(hook);
    const at = long ? [...key, 'before_stop', 'exec'] : [...key, 'before_stop'];
    const command = argv(scope, at, long ? hook.exec : hook);
    let timeout = 60;
    if (long && hook.timeout !== undefined) {
      const seconds = parseDuration(hook.timeout);
      const timeoutKey = [...key, 'before_stop', 'timeout'];
      if (seconds === null) scope.failKey(timeoutKey, `"${hook.timeout}" is not a duration ("30s", "2m")`);
      if (seconds < 1 || seconds > 3600) scope.failKey(timeoutKey, `"${hook.timeout}" must be between 1s and 1h`);
      timeout = Math.ceil(seconds);
    }
    policy.before_stop = { command, timeout_seconds: timeout };
  }
  return policy;
}

function argv(scope: Scope, key: readonly PropertyKey[], value: string | string[]): string[] {
  const words = Array.isArray(value) ? value : splitShellWords(value);
  if (!Array.isArray(words)) return scope.failKey(key, `cannot split "${String(value)}" into words: ${words.error}`);
  if (words.length === 0 || words.some((w) => w === '')) scope.failKey(key, 'must name a command to run in the container (an empty word is not one)');
  if (words.length > 64) scope.failKey(key, `has ${words.length} words; at most 64`);
  return words;
}
