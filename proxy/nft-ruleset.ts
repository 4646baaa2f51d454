/**
 * The kernel fast path's nftables rules, as text for `nft -f -` (pure; `nft-command.ts` runs
 * it). drover owns one table per node proxy and nothing else: the script deletes and
 * re-creates that table in one transaction, so a rule set is replaced atomically and no other
 * table or chain is ever touched.
 *
 * - `output` (hook output, dstnat priority): connections made on this host, the local-cluster
 *   and link case. Loopback-to-loopback DNAT works here without `route_localnet`.
 * - `prerouting`: connections from other hosts. They are marked so that `postrouting` can
 *   masquerade them (replies must come back through this node when the target is another
 *   node). A target on 127.0.0.0/8 reached from another host also needs
 *   `net.ipv4.conf.all.route_localnet=1`, and a target on another node needs
 *   `net.ipv4.ip_forward=1`; drover does not change those host settings.
 * - DNATed flows get their own conntrack timeouts (`ct timeout`, where the kernel has
 *   nf_conntrack_timeout): TIME_WAIT lasts `timeWaitSeconds` instead of the host's 120 s.
 *   A client that reuses a source port within those 120 s (a few thousand new connections a
 *   second is enough) meets its old entry, the NAT picks another source port to keep reply
 *   tuples unique, and the backend's TIME_WAIT socket for that port rejects the SYN (PAWS):
 *   the client waits out a 1 s SYN retransmit. Measured here with wrk `Connection: close`:
 *   1.7–7.9k new connections/s with the host's timeout, 21k with 2 s, 28k direct. Both ends
 *   keep their own TCP TIME_WAIT, so the short conntrack one loses nothing.
 */
import type { DnatRule } from './route-plan.ts';

/** ct mark for flows DNATed in prerouting ("drov"). */
export const DROVER_CT_MARK = '0x64726f76';

export function tableIsValid(table: string): boolean {
  return /^drover_[a-z0-9_]{1,40}$/.test(table);
}

export interface NftScriptOptions {
  /**
   * Conntrack TIME_WAIT of DNATed flows, in seconds (1–120), or null for the host's own
   * (for a kernel without nf_conntrack_timeout, where `ct timeout` objects are refused).
   */
  timeWaitSeconds: number | null;
}

export const DEFAULT_NFT_SCRIPT_OPTIONS: NftScriptOptions = { timeWaitSeconds: 2 };

/** Name of the table's conntrack timeout policy for TCP. */
const CT_TIMEOUT = 'drover_tcp';

/** The script that makes `table` hold exactly `rules` for connections to `listenHost`. */
export function nftReplaceScript(
  table: string,
  listenHost: string,
  rules: readonly DnatRule[],
  options: NftScriptOptions = DEFAULT_NFT_SCRIPT_OPTIONS,
): string {
  assertSafe(table, listenHost, rules);
  const tw = options.timeWaitSeconds;
  if (tw !== null && (!Number.isInteger(tw) || tw < 1 || tw > 120)) throw new Error(`not a TIME_WAIT timeout in seconds (1-120): ${tw}`);
  const timeout = tw === null ? '' : ` ct timeout set "${CT_TIMEOUT}"`;
  const dnat = (r: DnatRule): string => `ip daddr ${listenHost} tcp dport ${r.port}${timeout} dnat to ${r.target.host}:${r.target.port}`;
  const lines = [
    `table ip ${table} {}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    ...(tw === null ? [] : [`  ct timeout ${CT_TIMEOUT} {`, `    protocol tcp; l3proto ip;`, `    policy = { time_wait: ${tw} }`, `  }`]),
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    ...rules.map((r) => `    ${dnat(r)}`),
    `  }`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority -100; policy accept;`,
    ...rules.map((r) => `    ${dnat(r).replace(' dnat to', ` ct mark set ${DROVER_CT_MARK} dnat to`)}`),
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority 100; policy accept;`,
    `    ct mark ${DROVER_CT_MARK} masquerade`,
    `  }`,
    `}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Feature detection for `ct timeout` objects (nf_conntrack_timeout): adds a policy to `table`
 * (created empty if absent) and deletes it again, in one transaction. A kernel without the
 * feature refuses the whole script and nothing changes.
 */
export function nftConntrackTimeoutProbeScript(table: string): string {
  if (!tableIsValid(table)) throw new Error(`not a drover table name: ${table}`);
  return [
    `table ip ${table} {}`,
    `table ip ${table} {`,
    `  ct timeout drover_probe {`,
    `    protocol tcp; l3proto ip;`,
    `    policy = { time_wait: ${DEFAULT_NFT_SCRIPT_OPTIONS.timeWaitSeconds} }`,
    `  }`,
    `}`,
    `delete ct timeout ip ${table} drover_probe`,
    '',
  ].join('\n');
}

/** Removes `table` if it exists (left over from a crashed proxy, or at exit). */
export function nftDeleteScript(table: string): string {
  if (!tableIsValid(table)) throw new Error(`not a drover table name: ${table}`);
  return `table ip ${table} {}\ndelete table ip ${table}\n`;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

// The script reaches nft as text: everything in it is checked here, not trusted.
function assertSafe(table: string, listenHost: string, rules: readonly DnatRule[]): void {
  if (!tableIsValid(table)) throw new Error(`not a drover table name: ${table}`);
  if (!IPV4.test(listenHost)) throw new Error(`listen host is not an IPv4 address: ${listenHost}`);
  for (const r of rules) {
    if (!IPV4.test(r.target.host)) throw new Error(`target is not an IPv4 address: ${r.target.host}`);
    for (const p of [r.port, r.target.port]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
  }
}
