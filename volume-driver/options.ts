/**
 * The options of `docker volume create -d drover-… -o key=value` (Create's `Opts`).
 * Unknown keys are refused by name (docs/DESIGN.md §11), never ignored. Pure.
 *
 * - `size`: the dataset's maximum size (size.ts), e.g. `size=10G`; default: no limit.
 * - `node`: the node that should hold the new dataset, by address or uuid; default: this node.
 */
import { DroverError } from '#common/errors.ts';
import { parseSize } from './size.ts';

export interface CreateOptions {
  size?: number;
  node?: string;
}

const KNOWN = ['size', 'node'];

export function parseCreateOptions(opts: Record<string, string>): CreateOptions {
  const result: CreateOptions = {};
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'size') result.size = parseSize(value);
    else if (key === 'node') {
      if (!/^[A-Za-z0-9.:-]{1,64}$/.test(value)) {
        throw new DroverError('DROVER_VOLUME_BAD_OPTION', `option node="${value}" is not a node address or uuid`, { detail: { option: 'node' } });
      }
      result.node = value;
    } else {
      throw new DroverError('DROVER_VOLUME_BAD_OPTION', `unknown option "${key}" (drover volumes take: ${KNOWN.join(', ')})`, { detail: { option: key } });
    }
  }
  return result;
}
