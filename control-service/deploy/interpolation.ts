import type { Scope } from './scope.ts';

/**
 * Compose interpolates `$VAR` and `${VAR}` from the shell that runs it. A drover deploy is
 * parsed by the control service, far from that shell, so substituting would silently use
 * the wrong (or an empty) environment: a variable is refused instead, naming the key.
 * `$$` is Compose's literal `$` and becomes `$`. Returns a copy with the strings unescaped.
 */
export function unescapeDollars(scope: Scope, value: unknown, path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    if (!value.includes('$')) return value;
    let out = '';
    for (let i = 0; i < value.length; i++) {
      const c = value[i];
      if (c !== '$') {
        out += c;
        continue;
      }
      const next = value[i + 1];
      if (next === '$') {
        out += '$';
        i++;
      } else if (next !== undefined && /[A-Za-z_{]/.test(next)) {
        scope.failKey(path, `"${value}" uses a variable; drover does not interpolate variables (write "$$" for a literal "$")`);
      } else out += c;
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => unescapeDollars(scope, v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unescapeDollars(scope, v, [...path, k])]));
  }
  return value;
}
