/**
 * The last JSON body of a read, as bytes, kept until its key (the versions it was built
 * from) changes: repeated reads send the same buffer instead of serializing again.
 */
export class BodyCache {
  private key: string | null = null;
  private body: Buffer = Buffer.alloc(0);

  get(key: string, build: () => string): Buffer {
    if (key !== this.key) {
      this.body = Buffer.from(build());
      this.key = key;
    }
    return this.body;
  }
}
