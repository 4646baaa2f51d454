import { z } from 'zod';
import type { ServiceContext } from './compose-service.ts';
import type { Scope } from './scope.ts';

const EnvFileEntry = z.union([z.string(), z.object({ path: z.string(), required: z.boolean().optional(), format: z.literal('raw').optional() }).strict()]);
const EnvFileList = z.union([z.string(), z.array(EnvFileEntry)], { error: 'must be a path or a list of paths' });

/**
 * A service's `env_file:` → its variables, later files winning (and `environment:` over all,
 * as in Compose). The files sit beside the Compose file on the operator's machine: the drover
 * CLI reads them (cli/compose-env.ts) and sends their variables with the file; a path it did
 * not find is refused unless `required: false`.
 */
export function readEnvFiles(scope: Scope, value: unknown, context: ServiceContext): Record<string, string> {
  if (value === undefined) return {};
  const list = scope.shape(['env_file'], EnvFileList, value);
  const entries = (typeof list === 'string' ? [list] : list).map((e) => (typeof e === 'string' ? { path: e, required: true } : { path: e.path, required: e.required ?? true }));
  const env: Record<string, string> = {};
  entries.forEach((entry, i) => {
    const key = typeof list === 'string' ? ['env_file'] : ['env_file', i];
    if (context.envFiles === undefined) {
      scope.reportKey(key, `"${entry.path}" is a file on the deploying machine; deploy with the drover CLI, which reads it, or list the variables under "environment:"`);
      return;
    }
    const vars = context.envFiles[entry.path];
    if (vars === undefined || vars === null) {
      if (entry.required) scope.reportKey(key, `"${entry.path}": no such file beside the Compose file (or write "required: false")`);
      return;
    }
    Object.assign(env, vars);
  });
  return env;
}
