/**
 * A node's memory for placement: its `memory` label, in bytes, with an optional binary
 * suffix (`8589934592`, `8G`, `512M`). No label (or one that is not a size) means the
 * scheduler does not count memory on that node.
 */
const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function nodeMemory(labels: Readonly<Record<string, string>>): number | null {
  const text = labels.memory;
  if (text === undefined) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return null;
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} B`;
}
