import { access } from 'node:fs/promises';

/** True when `path` exists (any type). */
export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
