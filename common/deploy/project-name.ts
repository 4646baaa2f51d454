/** The project a Compose file names with its top-level `name:`, or null. */
export function projectNameOf(text: string): string | null {
  void text;
  return null;
}
