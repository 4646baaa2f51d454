import type { z } from 'zod';
import { ConfigAbort, keyPath } from './config-error.ts';
import { didYouMean } from '#common/did-you-mean.ts';
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

  /**
   * Runs one independent piece of reading; when it fails (its problem is recorded), returns
   * `fallback` so that reading goes on and the next pieces' problems are found too.
   */
  attempt<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigAbort) return fallback;
      throw err;
    }
  }

  /** Records `key "ports[0]": <what>` at that key, and goes on. */
  reportKey(key: readonly PropertyKey[], what: string): void {
    const label = key.length === 0 ? what : `key "${keyPath(key)}": ${what}`;
    this.src.report([...this.base, ...key], label, this.service, key);
  }

  /** Records a message that already names what it is about, and goes on. */
  report(key: readonly PropertyKey[], what: string): void {
    this.src.report([...this.base, ...key], what, this.service, key);
  }

  /** Records `unsupported key "x"` (with the reason, if any), and goes on. */
  reportUnsupported(key: readonly PropertyKey[], reason?: string): void {
    this.src.report([...this.base, ...key], `unsupported key "${keyPath(key)}"${reason ? `: ${reason}` : ''}`, this.service, key);
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
   * Parses `value` (found at `key`) with a zod schema. Each issue is recorded as a problem:
   * an unknown key reads `unsupported key "x"` (plus `reasons[x]` when there is one, looked up
   * by the bare key name), any other `key "a.b": <zod's message>`; then the value is abandoned.
   */
  shape<S extends z.ZodType>(key: readonly PropertyKey[], schema: S, value: unknown, reasons: Record<string, string> = {}): z.infer<S> {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    // Every issue is a problem of its own: an operator fixes them all in one go.
    for (const issue of result.error.issues) {
      const at = [...key, ...issue.path];
      if (issue.code === 'unrecognized_keys') {
        for (const name of issue.keys) {
          const meant = reasons[name] === undefined ? didYouMean(name, keysAt(schema, issue.path)) : undefined;
          this.reportUnsupported([...at, name], reasons[name] ?? (meant === undefined ? undefined : `did you mean "${meant}"?`));
        }
      } else if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
        this.reportKey(at, 'is required');
      } else {
        this.reportKey(at, issue.message.replace(/^Invalid input: /, ''));
      }
    }
    throw new ConfigAbort();
  }
}

/** zod's definition, as far as `keysAt` looks into it. */
interface Def {
  type: string;
  innerType?: { _zod: { def: Def } };
  shape?: Record<string, { _zod: { def: Def } }>;
  options?: { _zod: { def: Def } }[];
}

/**
 * The keys an object schema knows at `path` inside `schema` (through optional, nullable and
 * union), for suggesting one in place of a misspelt key; empty when there is no object there.
 */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const objects = (def: Def): Def[] => {
    if (def.innerType !== undefined) return objects(def.innerType._zod.def);
    if (def.options !== undefined) return def.options.flatMap((o) => objects(o._zod.def));
    return def.shape === undefined ? [] : [def];
  };
  let here = objects((schema as unknown as { _zod: { def: Def } })._zod.def);
  for (const step of path) here = here.flatMap((d) => (d.shape?.[String(step)] === undefined ? [] : objects(d.shape[String(step)]!._zod.def)));
  return [...new Set(here.flatMap((d) => Object.keys(d.shape!)))];
}
