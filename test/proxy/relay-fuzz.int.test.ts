/**
 * A bounded libFuzzer run over the native relay's control-message parser and replay rule
 * (native/fuzz/relay-msg-fuzz.c, `make -C native fuzz-relay`): malformed lines of every
 * shape, AddressSanitizer and UBSan on. A crash, a leak or a broken invariant (a line accepted
 * outside the grammar, one that does not read back the same, a replay verdict that differs
 * from replay.ts) fails the run, with libFuzzer's report.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeWith } from '../support/require.ts';

const NATIVE = fileURLToPath(new URL('../../native', import.meta.url));

describeWith(['libfuzzer'], "the native relay's control messages under libFuzzer", () => {
  it('survives a bounded fuzz run with every invariant holding', async () => {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile('make', ['-s', '-C', NATIVE, 'fuzz-relay', 'FUZZ_SECONDS=15'], { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` });
      });
    });
    if (result.code !== 0) throw new Error(`the fuzz run failed (exit ${result.code}):\n${result.output.slice(-6000)}`);
    expect(result.output).toMatch(/Done \d+ runs in \d+ second/);
    expect(result.output).not.toMatch(/invariant failed|ERROR: (AddressSanitizer|libFuzzer)/);
  }, 300_000);
});
