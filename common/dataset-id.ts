import { createHash } from 'node:crypto';

/**
 * The dataset id of a project's named volume: the first 16 bytes of
 * SHA-256("drover-volume\0" + project + "\0" + volume), shaped as a version-4 UUID (version
 * and variant bits set). Deterministic, so re-deploying the same files finds the same
 * datasets; scoped by project, so two projects' `data` volumes are different datasets.
 * (Flocker used md5(app name) shaped the same way, unscoped.)
 */
export function datasetIdFor(project: string, volume: string): string {
  const bytes = createHash('sha256').update(`drover-volume\0${project}\0${volume}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
