import { DroverError } from '#common/errors.ts';

/**
 * `drover cluster …` belongs to local-cluster/ (another module, its own flags). It is
 * loaded only when asked for, so other commands do not pay for loading it.
 */
export const clusterCommand = {
  name: 'cluster',
  summary: 'run a whole local cluster on this machine (up, down, status)',
  async delegate(argv: string[]): Promise<number> {
    let module: { runClusterCommand(argv: string[]): Promise<number> };
    try {
      module = await import('../../local-cluster/command.ts');
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
        throw new DroverError('DROVER_UNAVAILABLE', '"drover cluster" is not available in this build (local-cluster/command.ts is missing)', {
          cause: err,
        });
      }
      throw err;
    }
    return module.runClusterCommand(argv);
  },
};
