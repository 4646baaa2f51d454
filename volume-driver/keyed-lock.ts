/**
 * Runs tasks one at a time per key (a volume name), in arrival order; different keys run
 * in parallel. Docker may send Mount and Unmount of one volume at the same time (two
 * containers starting and stopping), and each of them reads then writes the mount counts.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task running or queued. */
  get busy(): number {
    return this.tails.size;
  }
}
