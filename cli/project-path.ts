import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_DIR_FILES, type PathContent } from './compose-files.ts';

/**
 * A file or a directory of the project, to ship with the deploy (cli/compose-files.ts checks
 * the sizes). A directory is read whole, regular files only; a link or a device is named as
 * the reason it cannot be shipped. Null: no such path.
 */
export async function readProjectPath(path: string): Promise<PathContent | null> {
  const info = await lstat(path).catch(() => null);
  if (info === null) return null;
  if (info.isFile()) return { file: await readFile(path) };
  if (!info.isDirectory()) return { error: 'is neither a regular file nor a directory' };
  const dir: Record<string, Uint8Array> = {};
  const walk = async (rel: string): Promise<string | null> => {
    for (const entry of await readdir(join(path, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        const problem = await walk(child);
        if (problem !== null) return problem;
      } else if (entry.isFile()) {
        dir[child] = await readFile(join(path, child));
        if (Object.keys(dir).length > MAX_DIR_FILES) return `holds more than ${MAX_DIR_FILES} files; one that travels with the project holds at most ${MAX_DIR_FILES}`;
      } else return `holds "${child}", which is not a regular file or a directory`;
    }
    return null;
  };
  const problem = await walk('');
  return problem === null ? { dir } : { error: problem };
}

