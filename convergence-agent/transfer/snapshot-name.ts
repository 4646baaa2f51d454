/**
 * Names of the snapshots replication takes: `drover-<UTC yyyymmddThhmmssmmmZ>-<seq>`, sortable,
 * inside drover's namespace and the OpenZFS charset. Pure apart from the sequence counter.
 */
let sequence = 0;

/** A fresh snapshot name for `now` (the counter keeps two names in one millisecond apart). */
export function newSnapshotName(now: Date = new Date()): string {
  sequence = (sequence + 1) % 10_000;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `drover-${stamp}-${String(sequence).padStart(4, '0')}`;
}
