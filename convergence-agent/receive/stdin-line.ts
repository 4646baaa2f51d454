/**
 * Reads one line from a descriptor without reading past it, a byte at a time: what follows
 * the line is the zfs stream, which `zfs receive` must read itself from the same pipe.
 */
import { readSync } from 'node:fs';
import { DroverError } from '#common/errors.ts';

/** The line (without its newline), or null when the input ends first. @throws DROVER_SSH_PROTOCOL past `max` bytes */
export function readLineSync(fd: number, max = 64 * 1024): string | null {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, one, 0, 1, null);
    } catch (err) {
      // A non-blocking descriptor with nothing yet: wait a little and read again.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      throw err;
    }
    if (n === 0) return null;
    if (one[0] === 10) return Buffer.from(bytes).toString('utf8');
    bytes.push(one[0]!);
    if (bytes.length > max) throw new DroverError('DROVER_SSH_PROTOCOL', `a header longer than ${max} bytes`);
  }
}
