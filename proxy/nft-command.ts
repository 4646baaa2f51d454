/**
 * The kernel fast path's adapter: runs `nft -f -` (execa, argument array, script on stdin).
 * Calls are serialized: two proxies' nft transactions never interleave in this process, and a
 * later sync always lands after an earlier one.
 */
import { execa } from 'execa';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { nftDeleteScript, nftReplaceScript } from './nft-ruleset.ts';
import type { NatRules } from './proxy.ts';
import type { DnatRule } from './route-plan.ts';

export interface NftOptions {
  table: string;
  listenHost: string;
  log: Logger;
  /** The nft binary; Debian's `nftables` package installs /usr/sbin/nft. */
  nft?: string;
}

export function createNftRules(o: NftOptions): NatRules & { available(): Promise<boolean> } {
  const nft = o.nft ?? 'nft';
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
  return {
    async available() {
      const result = await execa(nft, ['--version'], { reject: false, timeout: 5_000 });
      return result.exitCode === 0;
    },
    async sync(rules: DnatRule[]) {
      await run(nftReplaceScript(o.table, o.listenHost, rules), 'replace');
      o.log.debug({ table: o.table, rules: rules.length }, 'kernel rules replaced');
    },
    async clear() {
      await run(nftDeleteScript(o.table), 'delete');
    },
  };
}
