import type { Scope } from './scope.ts';

/**
 * For files that reach the control service without the drover CLI's interpolation (its
 * trailer, compose-file.ts): Compose interpolates `$VAR` and `${VAR}` from the shell that
 * runs it, and that shell is not here, so substituting would silently use the wrong (or an
 * empty) environment: a variable is refused instead, naming the key. `$$` is Compose's
 * literal `$` and becomes `$`. Returns a copy with the strings unescaped.
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
        scope.reportKey(path, `"${value}" uses a variable; the drover CLI fills variables in ("drover deploy"); without it write the value (or "$$" for a literal "$")`);
        return value;
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
