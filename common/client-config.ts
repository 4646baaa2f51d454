/**
 * The CLI's configuration file (docs/DESIGN.md §23), kubectl-like: named contexts, each a
 * control service and the certificate to present to it, and the current one.
 *
 * ```yaml
 * # ~/.config/drover/config.yml  (or $DROVER_CONFIG)
 * current-context: demo
 * contexts:
 *   - name: demo
 *     server: https://127.0.0.1:4523
 *     ca: /var/lib/drover/clusters/demo/ca/ca.crt
 *     cert: /var/lib/drover/clusters/demo/ca/users/operator.crt
 *     key: /var/lib/drover/clusters/demo/ca/users/operator.key
 *   - name: ha                      # several control services: `servers` instead of `server`
 *     servers: [https://10.0.0.1:4523, https://10.0.0.2:4523, https://10.0.0.3:4523]
 *     ca: …
 * ```
 *
 * With `servers`, the CLI tries them in order and fails over (docs/DESIGN.md §29).
 *
 * Read by `drover` (cli/dispatch.ts: flags, then DROVER_* variables, then the context);
 * written by `drover cluster up` (a context per local cluster) and `down` (removes it).
 * The file holds paths, never keys; it is written 0600 all the same.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { z } from 'zod';
import { DroverError } from './errors.ts';
import { endpointProblem, parseControlEndpoints } from './control-endpoints.ts';

export const ClientContext = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", ".", "-"'),
    server: z.url({ protocol: /^https?$/, error: 'must be an https:// (or plain loopback http://) URL' }).optional(),
    /** Several control services of one cluster (docs/DESIGN.md §29); instead of `server`. */
    servers: z.array(z.string()).min(1, 'names no control service').optional(),
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.server === undefined && c.servers === undefined) ctx.addIssue({ code: 'custom', path: ['server'], message: 'is required (or servers: a list of control services)' });
    if (c.server !== undefined && c.servers !== undefined) ctx.addIssue({ code: 'custom', path: ['servers'], message: 'goes instead of server, not beside it' });
    c.servers?.forEach((url, i) => {
      const problem = endpointProblem(url);
      if (problem !== null) ctx.addIssue({ code: 'custom', path: ['servers', i], message: problem });
    });
  });
export type ClientContext = z.infer<typeof ClientContext>;

/** The control services a context names, as origins, in order. */
export function contextEndpoints(context: ClientContext): string[] {
  return parseControlEndpoints(context.servers ?? context.server ?? [], `context ${context.name}: servers`);
}

export const ClientConfig = z
  .object({
    'current-context': z.string().optional(),
    contexts: z.array(ClientContext).default([]),
  })
  .strict();
export type ClientConfig = z.infer<typeof ClientConfig>;

/** `$DROVER_CONFIG`, else `$XDG_CONFIG_HOME/drover/config.yml`, else `~/.config/drover/config.yml`. */
export function clientConfigPath(env: Record<string, string | undefined>): string {
  if (env.DROVER_CONFIG) return env.DROVER_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'drover', 'config.yml');
}

/** The default directory of `drover ca` (`--dir`): beside the config file. */
export function defaultCaDir(env: Record<string, string | undefined>): string {
  return join(dirname(clientConfigPath(env)), 'ca');
}

/**
 * Reads the file; a missing file is an empty configuration.
 * @throws DROVER_CONFIG_INVALID naming the file and every bad key
 */
export async function readClientConfig(path: string): Promise<ClientConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: [] };
    throw new DroverError('DROVER_CONFIG_INVALID', `${path}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`, { detail: { file: path }, cause: err });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new DroverError('DROVER_CONFIG_INVALID', `${path}: not valid YAML: ${(err as Error).message}`, { detail: { file: path }, cause: err });
  }
  const parsed = ClientConfig.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new DroverError('DROVER_CONFIG_INVALID', `${path}: ${problems.join('; ')}`, { detail: { file: path, problems } });
  }
  const names = parsed.data.contexts.map((c) => c.name);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0) throw new DroverError('DROVER_CONFIG_INVALID', `${path}: contexts: ${twice.map((n) => `'${n}'`).join(', ')} named more than once`, { detail: { file: path } });
  return parsed.data;
}

async function writeClientConfig(path: string, config: ClientConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, `# drover's contexts (drover cluster up adds one per local cluster)\n${stringify(config)}`, { mode: 0o600 });
  await rename(temp, path);
}

/** Adds or replaces the context `context.name`; makes it current when `makeCurrent` or when none is. */
export async function saveContext(path: string, context: ClientContext, makeCurrent: boolean): Promise<void> {
  const config = await readClientConfig(path);
  const contexts = [...config.contexts.filter((c) => c.name !== context.name), context];
  const current = makeCurrent || config['current-context'] === undefined ? context.name : config['current-context'];
  await writeClientConfig(path, { 'current-context': current, contexts });
}

/** Removes the context `name` (and makes none current if it was). Does nothing when the file or context is absent. */
export async function removeContext(path: string, name: string): Promise<void> {
  const config = await readClientConfig(path);
  if (!config.contexts.some((c) => c.name === name)) return;
  const contexts = config.contexts.filter((c) => c.name !== name);
  const current = config['current-context'] === name ? undefined : config['current-context'];
  await writeClientConfig(path, { ...(current === undefined ? {} : { 'current-context': current }), contexts });
}

/**
 * The context to use: `name` if given (an unknown name is an error), else the current
 * context, else null.
 * @throws DROVER_CONFIG_INVALID for a name the file does not have
 */
export function pickContext(config: ClientConfig, name: string | undefined, path: string): ClientContext | null {
  const wanted = name ?? config['current-context'];
  if (wanted === undefined) return null;
  const found = config.contexts.find((c) => c.name === wanted);
  if (found) return found;
  throw new DroverError('DROVER_CONFIG_INVALID', `${path}: no context named '${wanted}' (contexts: ${config.contexts.map((c) => c.name).join(', ') || 'none'})`, { detail: { file: path, context: wanted } });
}
