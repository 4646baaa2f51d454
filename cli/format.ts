/** Output formatting for the CLI: tables, sizes, rates, durations. Pure. */

/** Aligned columns, a header row first; empty cells show as `-`. */
export function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [header, ...rows.map((row) => row.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))];
  const widths = header.map((_, col) => Math.max(...cells.map((row) => (row[col] ?? '').length)));
  return cells.map((row) => row.map((c, col) => c.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 GiB`; null → `-`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function rate(bytesPerSecond: number | null | undefined): string {
  return bytesPerSecond === null || bytesPerSecond === undefined ? '-' : `${bytes(Math.round(bytesPerSecond))}/s`;
}

/** `850 ms`, `12.3 s`, `4m05s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `8080→80, 5432→5432, 53/udp→53, 127.0.0.1:9000→9000`. */
export function ports(list: { internal: number; external: number; protocol?: 'udp'; host_ip?: string }[]): string {
  return list.map((p) => `${p.host_ip === undefined ? '' : `${p.host_ip}:`}${p.external}${p.protocol === 'udp' ? '/udp' : ''}→${p.internal}`).join(', ');
}

export function labels(record: Record<string, string>): string {
  return Object.entries(record)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function shortId(uuid: string): string {
  return uuid.slice(0, 8);
}

/**
 * An application's standby copies for the REPLICAS column (docs/DESIGN.md §17):
 * `n2 3s, n3 4s` (seconds behind the primary), `n2 seeding`, `n3 diverged!` (a `!` marks a
 * state that needs the operator: diverged or error).
 */
export function replicaList(list: { node: string; lag_seconds: number | null; state: string }[], nameOf: (node: string) => string): string {
  return list
    .map((r) => {
      const name = nameOf(r.node);
      if (r.state === 'diverged' || r.state === 'error') return `${name} ${r.state}!`;
      if (r.state === 'ok' && r.lag_seconds !== null) return `${name} ${Math.round(r.lag_seconds)}s`;
      return `${name} ${r.state}`;
    })
    .join(', ');
}
