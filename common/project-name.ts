import { parse } from 'yaml';

/**
 * The project a Compose file names with its top-level `name:`, or null (none, or the text
 * is not YAML — the control service reports that properly when it parses the file).
 */
export function projectNameOf(text: string): string | null {
  try {
    const top: unknown = parse(text);
    if (top !== null && typeof top === 'object' && 'name' in top && typeof top.name === 'string') return top.name;
  } catch {
    // Reported by parseDeployment, with the line and column.
  }
  return null;
}
