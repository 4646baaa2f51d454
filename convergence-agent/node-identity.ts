/**
 * Who this node is: its uuid (generated once, kept in the state directory, so a restarted
 * agent is the same node) and its era (the host's boot id: a new era means the host
 * restarted, and the control service knows anything it remembered about it is stale).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DroverError } from '#common/errors.ts';
import { Uuid } from '#common/model.ts';

/** Reads the node uuid from `file`, creating it (atomically) on first start. */
export async function loadOrCreateNodeUuid(file: string): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    const parsed = Uuid.safeParse(text);
    if (!parsed.success) {
      throw new DroverError('DROVER_CONFIG_INVALID', `${file}: does not hold a node uuid (found '${text.slice(0, 40)}')`, { detail: { file } });
    }
    return parsed.data;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const uuid = randomUUID();
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${uuid}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temp, file);
  return uuid;
}

/** The host's boot id; a fixed placeholder where the kernel does not offer one. */
export async function readEra(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim().slice(0, 64) || 'unknown';
  } catch {
    return 'unknown';
  }
}
