/** The last JSON body of a read, kept until its key (versions it was built from) changes. */
export class BodyCache {
  private key: string | null = null;
  private body = '';

  get(key: string, build: () => string): string {
    if (key !== this.key) {
      this.body = build();
      this.key = key;
    }
    return this.body;
  }
}
