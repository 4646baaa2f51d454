/**
 * The kernel fast path's adapter: runs `nft -f -` (execa, argument array, script on stdin).
 * Calls are serialized: two proxies' nft transactions never interleave in this process, and a
 * later sync always lands after an earlier one. Before the first sync it probes once for
 * conntrack timeout policies (nf_conntrack_timeout); a kernel without them gets the rules
 * without one, with a warning: DNAT still works, new connections from reused client ports
 * may wait out a SYN retransmit.
 */
import { execa } from 'execa';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { DEFAULT_NFT_SCRIPT_OPTIONS, nftConntrackTimeoutProbeScript, nftDeleteScript, nftReplaceScript, type NftScriptOptions } from './nft-ruleset.ts';
import type { NatRules } from './proxy.ts';
import type { DnatRule } from './route-plan.ts';

export interface NftOptions {
  table: string;
  listenHost: string;
  log: Logger;
  /** The nft binary; Debian's `nftables` package installs /usr/sbin/nft. */
  nft?: string;
  /** Conntrack timeouts of DNATed flows (default: TIME_WAIT 2 s where the kernel has them). */
  script?: NftScriptOptions;
}

export function createNftRules(o: NftOptions): NatRules & { available(): Promise<boolean> } {
  const nft = o.nft ?? 'nft';
  let scriptOptions: Promise<NftScriptOptions> | null = o.script ? Promise.resolve(o.script) : null;
  let queue: Promise<unknown> = Promise.resolve();
  const run = (script: string, what: string): Promise<void> => {
    const next = queue.then(async () => {
      const result = await execa(nft, ['-f', '-'], { input: script, reject: false, timeout: 10_000 });
      if (result.exitCode !== 0 || result.failed) {
        throw new DroverError('DROVER_NAT_FAILED', `nft ${what} of table ${o.table} failed: ${(result.stderr || result.shortMessage || '').trim()}`, {
          retryable: true,
          detail: { table: o.table, exitCode: result.exitCode ?? null },
        });
      }
    });
    queue = next.catch(() => {});
    return next;
  };
  const probeTimeouts = async (): Promise<NftScriptOptions> => {
    try {
      await run(nftConntrackTimeoutProbeScript(o.table), 'conntrack timeout probe');
      return DEFAULT_NFT_SCRIPT_OPTIONS;
    } catch (err) {
      o.log.warn({ table: o.table, err }, 'conntrack timeout policies refused; kernel rules use the host conntrack timeouts');
      return { timeWaitSeconds: null };
    }
  };
  return {
    async available() {
      const result = await execa(nft, ['--version'], { reject: false, timeout: 5_000 });
      return result.exitCode === 0;
    },
    async sync(rules: DnatRule[]) {
      scriptOptions ??= probeTimeouts();
      await run(nftReplaceScript(o.table, o.listenHost, rules, await scriptOptions), 'replace');
      o.log.debug({ table: o.table, rules: rules.length }, 'kernel rules replaced');
    },
    async clear() {
      await run(nftDeleteScript(o.table), 'delete');
    },
  };
}
