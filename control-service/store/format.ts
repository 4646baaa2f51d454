/**
 * The on-disk format of the file store: one JSON object
 * `{"format_version": 1, "version": <changes committed>, "desired": <Desired>}`.
 *
 * Older formats are upgraded on load by a chain of pure steps, one per format version, as
 * Flocker did (`upgrade_from_v1` … `v5`). Format 0 is drover's first layout: no
 * `format_version` field, one `volume` per application (Flocker's limit) and lease expiry as
 * `expires` seconds since the epoch.
 */
import { DroverError } from '#common/errors.ts';
import type { Desired } from '#common/model.ts';
import { desiredChunks } from './encode.ts';

export const FORMAT_VERSION = 1;

type Json = Record<string, unknown>;

/** Upgrades from format N to N+1, keyed by N. Pure; never sees a newer format. */
const upgrades: Record<number, (file: Json) => Json> = {
  0: upgradeFrom0,
};

export interface DecodedFile {
  version: number;
  /** Not yet validated: the caller validates the whole document. */
  desired: unknown;
  /** The format the file was in before upgrading. */
  readFormat: number;
}

/**
 * Decodes a parsed store file of any known format into the current one.
 * @throws DroverError DROVER_STORE_FORMAT for a file from a newer drover or of no known shape.
 */
export function decodeStoreFile(raw: unknown, file: string): DecodedFile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DroverError('DROVER_STORE_FORMAT', `${file}: not a drover store file (expected a JSON object)`, { detail: { file } });
  }
  let current = raw as Json;
  const readFormat = current.format_version === undefined ? 0 : current.format_version;
  if (typeof readFormat !== 'number' || !Number.isInteger(readFormat) || readFormat < 0) {
    throw new DroverError('DROVER_STORE_FORMAT', `${file}: format_version must be a whole number`, { detail: { file } });
  }
  if (readFormat > FORMAT_VERSION) {
    throw new DroverError(
      'DROVER_STORE_FORMAT',
      `${file} has format ${readFormat}, written by a newer drover; this one reads formats 0 to ${FORMAT_VERSION}`,
      { detail: { file, format_version: readFormat } },
    );
  }
  for (let format = readFormat; format < FORMAT_VERSION; format++) current = upgrades[format]!(current);
  const version = current.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
    throw new DroverError('DROVER_STORE_FORMAT', `${file}: version must be a whole number`, { detail: { file } });
  }
  return { version, desired: current.desired ?? {}, readFormat };
}

/** The file's bytes, in chunks to write in order. */
export function storeFileChunks(version: number, desired: Desired): Buffer[] {
  return [Buffer.from(`{"format_version":${FORMAT_VERSION},"version":${version},"desired":`), ...desiredChunks(desired), Buffer.from('}\n')];
}

function upgradeFrom0(file: Json): Json {
  const desired = { ...((file.desired as Json | undefined) ?? {}) };
  if (Array.isArray(desired.applications)) {
    desired.applications = desired.applications.map((app: Json) => {
      const { volume, ...rest } = app;
      if (volume === undefined || volume === null) return { volumes: [], ...rest };
      return { ...rest, volumes: [volume] };
    });
  }
  if (Array.isArray(desired.leases)) {
    desired.leases = desired.leases.map((lease: Json) => {
      const { expires, ...rest } = lease;
      return { ...rest, expires_at: typeof expires === 'number' ? expires * 1000 : null };
    });
  }
  return { format_version: 1, version: file.version ?? 0, desired };
}
