import type { z } from 'zod';
import { keyPath } from './config-error.ts';
import type { YamlSource } from './yaml-source.ts';

/**
 * Where a converter is working: one file, maybe one service (or application) in it, and the
 * YAML path of that service. Every failure goes through here so that the message names the
 * file (with line and column), the service and the key.
 */
export class Scope {
  constructor(
    readonly src: YamlSource,
    /** YAML path to the entry being read (`['services', 'web']`). */
    readonly base: readonly PropertyKey[],
    readonly service?: string,
  ) {}

  get file(): string {
    return this.src.file;
  }

  /** `key "ports[0]": <what>` at that key. */
  failKey(key: readonly PropertyKey[], what: string, issues?: unknown[]): never {
    const label = key.length === 0 ? what : `key "${keyPath(key)}": ${what}`;
    return this.src.fail([...this.base, ...key], label, this.service, key, issues);
  }

  /** A message that already names what it is about. */
  fail(key: readonly PropertyKey[], what: string): never {
    return this.src.fail([...this.base, ...key], what, this.service, key);
  }

  /**
   * Parses `value` (found at `key`) with a zod schema. The first issue becomes the error:
   * an unknown key reads `unsupported key "x"` (plus `reasons[x]` when there is one, looked up by the bare key name), any
   * other issue `key "a.b": <zod's message>`. Further issues, if any, go in `detail.issues`.
   */
  shape<S extends z.ZodType>(key: readonly PropertyKey[], schema: S, value: unknown, reasons: Record<string, string> = {}): z.infer<S> {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    // An unknown key says most about what is wrong (`build:` with no `image:`), so it goes first.
    const all = result.error.issues;
    const first = all.find((i) => i.code === 'unrecognized_keys') ?? all[0]!;
    // The message tells the first problem; `detail.issues` lists the others, if any.
    const others = all.filter((i) => i !== first).map((i) => describeIssue([...key, ...i.path], i));
    const issues = others.length === 0 ? undefined : others;
    const at = [...key, ...first.path];
    if (first.code === 'unrecognized_keys') {
      const name = first.keys[0]!;
      const full = [...at, name];
      const reason = reasons[name];
      return this.src.fail([...this.base, ...full], `unsupported key "${keyPath(full)}"${reason ? `: ${reason}` : ''}`, this.service, full, issues);
    }
    if (first.code === 'invalid_type' && first.message.endsWith('received undefined')) {
      return this.failKey(at, 'is required', issues);
    }
    return this.failKey(at, first.message.replace(/^Invalid input: /, ''), issues);
  }
}

function describeIssue(path: PropertyKey[], issue: z.core.$ZodIssue): { key: string; message: string } {
  if (issue.code === 'unrecognized_keys') return { key: keyPath(path), message: `unsupported key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` };
  const message = issue.code === 'invalid_type' && issue.message.endsWith('received undefined') ? 'is required' : issue.message.replace(/^Invalid input: /, '');
  return { key: keyPath(path), message };
}
