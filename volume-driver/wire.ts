/**
 * The request bodies of Docker's v1 volume plugin protocol (reference §1.4), as zod schemas.
 * Docker's keys are Go struct field names (`Name`, `Opts`, `ID`); unknown keys are ignored
 * because a newer engine may add some.
 */
import { z } from 'zod';

/** Docker's own rule for volume names (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), and short enough for zfs metadata. */
export const VolumeName = z
  .string({ error: 'Name is missing' })
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/, 'Name must start with a letter or digit and hold only letters, digits, "_", "." or "-"');

export const NameRequest = z.looseObject({ Name: VolumeName });
export const CreateRequest = z.looseObject({
  Name: VolumeName,
  Opts: z.record(z.string(), z.string()).nullable().optional(),
});
export const MountRequest = z.looseObject({
  Name: VolumeName,
  ID: z.string({ error: 'ID is missing' }).min(1, 'ID is empty').max(128),
});

export const ACCEPT = 'application/vnd.docker.plugins.v1.2+json';
