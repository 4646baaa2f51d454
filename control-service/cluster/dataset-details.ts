/**
 * `GET /v1/drover/datasets` (docs/DESIGN.md §26): every dataset of the desired configuration
 * that is not deleted, with what each reporting node holds of it — writable or not, bytes
 * used, how many snapshots and the newest. Pure: desired and the nodes' reports in.
 */
import type { DatasetDetail } from '#common/api.ts';
import type { Desired, NodeReport } from '#common/model.ts';

export function datasetDetails(desired: Desired, reports: Iterable<Pick<NodeReport, 'uuid' | 'datasets'>>): DatasetDetail[] {
  const copies = new Map<string, DatasetDetail['copies']>();
  for (const report of reports) {
    for (const d of report.datasets) {
      const list = copies.get(d.dataset_id) ?? [];
      // Snapshots come oldest first (creation order); the newest is the last.
      const newest = d.snapshots.reduce<{ name: string; createtxg: number } | null>((best, s) => (best === null || s.createtxg > best.createtxg ? s : best), null);
      list.push({ node_uuid: report.uuid, writable: d.writable, used_bytes: d.used_bytes, snapshots: d.snapshots.length, newest_snapshot: newest?.name ?? null });
      copies.set(d.dataset_id, list);
    }
  }
  const mountedBy = new Map<string, string[]>();
  for (const app of desired.applications) {
    for (const volume of app.volumes ?? []) mountedBy.set(volume.dataset_id, [...(mountedBy.get(volume.dataset_id) ?? []), app.name]);
  }
  return desired.datasets
    .filter((d) => !d.deleted)
    .map((d) => ({
      dataset_id: d.dataset_id,
      name: d.metadata.name ?? null,
      primary: d.primary,
      maximum_size: d.maximum_size,
      deleted: d.deleted,
      replicas: d.replicas,
      applications: mountedBy.get(d.dataset_id) ?? [],
      copies: (copies.get(d.dataset_id) ?? []).sort((a, b) => Number(b.writable) - Number(a.writable) || a.node_uuid.localeCompare(b.node_uuid)),
    }));
}
