/**
 * The control service's endpoints as every client takes them (docs/DESIGN.md §29): one URL
 * or several — `https://a:4523,https://b:4523` on a command line, a YAML list in a
 * configuration file — each an origin (scheme, host, port; no path, query or credentials).
 * The one API client (api-client.ts) fails over between them and follows a redirect only to
 * one of them; everything that takes `--control` or `control_url` parses it here, so the
 * agent, the proxy, the volume plugin and the CLI accept and refuse the same things.
 */
import { z } from 'zod';
import { DroverError } from './errors.ts';

/** One endpoint's problem, or null: an http(s) origin with nothing after it. */
export function endpointProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return `"${text}" is not a URL (e.g. https://127.0.0.1:4523)`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `"${text}" must be an https:// (or plain loopback http://) URL`;
  if (url.username !== '' || url.password !== '') return `"${text}" must not carry credentials`;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return `"${text}" must be scheme://host:port only, without a path or query`;
  return null;
}

/** The list a value names: an array as it is, a string split at commas; blanks dropped. */
function partsOf(value: string | readonly string[]): string[] {
  const parts = typeof value === 'string' ? value.split(',') : [...value];
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * The endpoints `value` names, as origins (`https://a:4523`), in order, each once.
 * @throws DROVER_CONFIG_INVALID naming every bad endpoint by its position (`control[1]`)
 */
export function parseControlEndpoints(value: string | readonly string[], field = 'control'): string[] {
  const parts = partsOf(value);
  if (parts.length === 0) throw new DroverError('DROVER_CONFIG_INVALID', `${field}: names no control service (e.g. https://127.0.0.1:4523)`, { detail: { field } });
  const problems: string[] = [];
  parts.forEach((p, i) => {
    const problem = endpointProblem(p);
    if (problem !== null) problems.push(`${field}${parts.length > 1 ? `[${i}]` : ''}: ${problem}`);
  });
  if (problems.length > 0) throw new DroverError('DROVER_CONFIG_INVALID', problems.join('; '), { detail: { field, problems } });
  return [...new Set(parts.map((p) => new URL(p).origin))];
}

/**
 * The zod form, for configuration files: a URL, a comma-separated list, or a YAML list;
 * parsed into origins. Each problem is an issue at the endpoint's index.
 */
export const ControlEndpoints = z.union([z.string(), z.array(z.string()).min(1, 'names no control service')]).transform((value, ctx) => {
  const parts = partsOf(value);
  if (parts.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'names no control service (e.g. https://127.0.0.1:4523)' });
    return z.NEVER;
  }
  let bad = false;
  parts.forEach((p, i) => {
    const problem = endpointProblem(p);
    if (problem === null) return;
    bad = true;
    ctx.addIssue({ code: 'custom', message: problem, ...(typeof value === 'string' && parts.length === 1 ? {} : { path: [i] }) });
  });
  return bad ? z.NEVER : [...new Set(parts.map((p) => new URL(p).origin))];
});

/** Whether any endpoint is https (then a client certificate is needed). */
export function anyHttps(endpoints: readonly string[]): boolean {
  return endpoints.some((e) => e.startsWith('https:'));
}

/** The list as a flag takes it back. */
export function endpointsText(endpoints: readonly string[]): string {
  return endpoints.join(',');
}
