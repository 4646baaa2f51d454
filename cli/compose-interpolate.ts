/**
 * Compose's variable syntax on plain strings (pure): `interpolate` one value, and
 * `parseDotEnv` for `.env`, `--env-file` and `env_file:` text. cli/compose-env.ts applies
 * them to a Compose file.
 */
export type Lookup = (name: string) => string | undefined;

export interface Interpolated {
  value: string;
  /** Unset variables used without a default (Compose warns and uses ""). */
  unset: string[];
  /** `${VAR:?message}` failures and malformed `${…}`. */
  errors: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Interpolates one string. Pure. */
export function interpolate(text: string, lookup: Lookup): Interpolated {
  const unset: string[] = [];
  const errors: string[] = [];
  const value = expand(text, lookup, unset, errors);
  return { value, unset, errors };
}

function expand(text: string, lookup: Lookup, unset: string[], errors: string[]): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) {
        errors.push(`"${text}": "\${" is not closed (write "$$" for a literal "$")`);
        return out + text.slice(i);
      }
      out += braced(text.slice(i + 2, end), lookup, unset, errors);
      i = end + 1;
    } else {
      const m = NAME.exec(text.slice(i + 1));
      if (m === null) {
        out += '$'; // a lone "$" (before a digit, a space, the end) stays, as in Compose
        i++;
        continue;
      }
      out += variable(m[0], lookup, unset);
      i += 1 + m[0].length;
    }
  }
  return out;
}

/** The index of the `}` closing a `${` whose body starts at `from`, braces nested; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '$') j++;
    else if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function braced(body: string, lookup: Lookup, unset: string[], errors: string[]): string {
  const m = NAME.exec(body);
  if (m === null) {
    errors.push(`"\${${body}}" is not a variable ("\${NAME}", "\${NAME:-default}")`);
    return '';
  }
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return variable(name, lookup, unset);
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (op === undefined) {
    errors.push(`"\${${body}}": unknown operator after ${name} (":-", "-", ":?", "?", ":+", "+")`);
    return '';
  }
  const arg = () => expand(rest.slice(op.length), lookup, unset, errors);
  const raw = lookup(name);
  const empty = raw === undefined || (op.startsWith(':') && raw === '');
  switch (op) {
    case ':-':
    case '-':
      return empty ? arg() : raw!;
    case ':?':
    case '?': {
      if (!empty) return raw!;
      const message = arg();
      errors.push(`required variable ${name} is missing a value${message === '' ? '' : `: ${message}`}`);
      return '';
    }
    default: // ':+' and '+': the alternative when set
      return empty ? '' : arg();
  }
}

function variable(name: string, lookup: Lookup, unset: string[]): string {
  const v = lookup(name);
  if (v === undefined) {
    if (!unset.includes(name)) unset.push(name);
    return '';
  }
  return v;
}

/**
 * Parses dotenv text as Compose does: `KEY=VALUE` lines, optional `export `, `#` comments,
 * blank lines; values unquoted (trimmed, ` #…` cut), in single quotes (literal) or in double
 * quotes (escapes `\n \t \\ \"`, may span lines); unquoted and double-quoted values
 * interpolate `${VAR}` from the variables above them, then `lookup`. A line that is not an
 * assignment is an error naming its line.
 */
export function parseDotEnv(text: string, file: string, lookup: Lookup = () => undefined): { vars: Record<string, string>; errors: string[]; unset: string[] } {
  const vars: Record<string, string> = {};
  const errors: string[] = [];
  const unset: string[] = [];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const seen: Lookup = (name) => (Object.hasOwn(vars, name) ? vars[name] : lookup(name));
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(=)?\s*(.*)$/.exec(line);
    if (m === null) {
      errors.push(`${file}:${n + 1}: "${line}" is not "NAME=value"`);
      continue;
    }
    const [, name, eq, rest] = m as unknown as [string, string, string | undefined, string];
    if (eq === undefined) {
      // A bare NAME takes its value from the environment, when set there.
      const v = lookup(name);
      if (v !== undefined) vars[name] = v;
      continue;
    }
    let value: string;
    if (rest.startsWith("'")) {
      const close = rest.indexOf("'", 1);
      value = close < 0 ? rest.slice(1) : rest.slice(1, close);
    } else if (rest.startsWith('"')) {
      let body = rest.slice(1);
      while (!/(^|[^\\])(\\\\)*"/.test(body) && n + 1 < lines.length) body += `\n${lines[++n]}`;
      const close = /(^|[^\\])(\\\\)*"/.exec(body);
      body = close === null ? body : body.slice(0, close.index + close[0].length - 1);
      body = body.replace(/\\([nrt"\\$])/g, (_, e: string) => ({ n: '\n', r: '\r', t: '\t' })[e] ?? (e === '$' ? '$$' : e));
      const r = interpolate(body, seen);
      errors.push(...r.errors.map((e) => `${file}:${n + 1}: ${e}`));
      unset.push(...r.unset);
      value = r.value;
    } else {
      const r = interpolate(rest.replace(/\s+#.*$/, '').trim(), seen);
      errors.push(...r.errors.map((e) => `${file}:${n + 1}: ${e}`));
      unset.push(...r.unset);
      value = r.value;
    }
    vars[name] = value;
  }
  return { vars, errors, unset: [...new Set(unset)] };
}
