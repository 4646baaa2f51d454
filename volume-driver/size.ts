/**
 * Parses the `size` option of `docker volume create -o size=…` into bytes.
 *
 * Accepts plain bytes (`1073741824`) or a number with a binary unit: `K`, `M`, `G`, `T`
 * (also written `KB`/`KiB`, any case), e.g. `1G`, `512m`, `1.5GiB`. The result is rounded
 * up to a multiple of 1024 and must be at least 64 MiB (the model's minimum, Flocker's rule).
 * Pure. Throws DROVER_VOLUME_BAD_OPTION with a message that quotes the value.
 */
import { DroverError } from '#common/errors.ts';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
export const MINIMUM_SIZE = 64 * 1024 * 1024;

export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new DroverError('DROVER_VOLUME_BAD_OPTION', `option size="${text}" is not a size: use bytes or a number with K, M, G or T (e.g. size=1G)`, {
      detail: { option: 'size', value: text },
    });
  }
  const bytes = Math.ceil((Number(m[1]) * unit) / 1024) * 1024;
  if (!Number.isSafeInteger(bytes)) {
    throw new DroverError('DROVER_VOLUME_BAD_OPTION', `option size="${text}" is too large`, { detail: { option: 'size', value: text } });
  }
  if (bytes < MINIMUM_SIZE) {
    throw new DroverError('DROVER_VOLUME_BAD_OPTION', `option size="${text}" is below the minimum of 64M`, { detail: { option: 'size', value: text } });
  }
  return bytes;
}

/** `1073741824` → `1G`; used in Status so people read sizes the way they typed them. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= factor) {
      const value = bytes / factor;
      return `${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`;
    }
  }
  return `${bytes}B`;
}
