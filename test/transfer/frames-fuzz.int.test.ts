/**
 * A bounded libFuzzer run over the native pump's frame parser (native/fuzz/frames-fuzz.c,
 * `make -C native fuzz`): ~25 s from the seed corpus, AddressSanitizer and UBSan on. A crash,
 * a leak or a broken invariant (plaintext that the honest sender did not seal, in order; a
 * stream accepted that is not exactly the honest one) makes make exit non-zero and this test
 * fail, with libFuzzer's report. The longer run is in native/README.md.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeWith } from '../support/require.ts';

const NATIVE = fileURLToPath(new URL('../../native', import.meta.url));

describeWith(['libfuzzer'], "the native pump's frame parser under libFuzzer", () => {
  it('survives a bounded fuzz run with every invariant holding', async () => {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile('make', ['-s', '-C', NATIVE, 'fuzz', 'FUZZ_SECONDS=25'], { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` });
      });
    });
    if (result.code !== 0) throw new Error(`the fuzz run failed (exit ${result.code}):\n${result.output.slice(-6000)}`);
    expect(result.output).toMatch(/Done \d+ runs in \d+ second/);
    expect(result.output).not.toMatch(/invariant failed|ERROR: (AddressSanitizer|libFuzzer)/);
  }, 300_000);
});
