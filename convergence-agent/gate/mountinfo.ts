/**
 * /proc/self/mountinfo, read for one question: is the mount that holds a path shared (or a
 * slave), so that a mount made under it later reaches containers that bind it with `rslave`
 * propagation? Pure.
 */

export interface MountEntry {
  mountPoint: string;
  /** Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`. */
  optional: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 7 || separator < 0) continue;
    entries.push({ mountPoint: unescape(fields[4]!), optional: fields.slice(6, separator) });
  }
  return entries;
}

/** The mount whose mount point is the longest prefix of `path` (the last one mounted there wins). */
export function mountOf(entries: MountEntry[], path: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const entry of entries) {
    const mp = entry.mountPoint;
    const inside = mp === '/' || path === mp || path.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (best === null || mp.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

/** Mounts under this one propagate to its slaves: shared, or itself a slave (`master:`). */
export function propagates(entry: MountEntry): boolean {
  return entry.optional.some((f) => f.startsWith('shared:') || f.startsWith('master:'));
}
