import { afterEach, describe, expect, it, vi } from 'vitest';
import { runClusterCommand } from './command.ts';

/** What the command wrote to stdout and stderr, and its exit code. */
async function cluster(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  const code = await runClusterCommand(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

describe('drover cluster arguments', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints the usage of every verb on --help and exits 0', async () => {
    const help = await cluster('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: drover cluster up \[--nodes N\] \[--name NAME\] \[--subnet S\] \[--images busybox,redis\] \[--isolate\] \[--metrics\] \[--control 1\|3\|5\]\n {7}drover cluster down/);
    for (const verb of ['up', 'down', 'status', 'images', 'kill', 'partition', 'heal']) expect(help.stdout).toMatch(new RegExp(`\\n  ${verb} `));
    const up = await cluster('up', '-h');
    expect(up.code).toBe(0);
    for (const flag of ['--nodes <N>', '--name <NAME>', '--subnet <S>', '--images <LIST>', '--isolate']) expect(up.stdout).toContain(flag);
  });

  it('exits 2 with the usage on stderr without a verb, with an unknown verb, flag or image, or with an extra argument', async () => {
    for (const argv of [[], ['start'], ['up', '--bogus'], ['up', 'extra'], ['up', '--images', 'busybox,nginx'], ['down', '--name'], ['kill'], ['partition'], ['heal', 'n1', 'n2']]) {
      const result = await cluster(...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stdout, argv.join(' ')).toBe('');
      expect(result.stderr.length, argv.join(' ')).toBeGreaterThan(0);
    }
    expect((await cluster('up', '--images', 'busybox,nginx')).stderr).toBe('drover cluster up: --images: unknown image nginx (known: busybox, redis, postgres)\n');
    expect(await cluster('up', '--nodes', 'three')).toEqual({ code: 2, stdout: '', stderr: "drover cluster up: --nodes: a number of nodes (1 to 9), not 'three'\n" });
    expect(await cluster('up', '--subnet', '1.5')).toEqual({ code: 2, stdout: '', stderr: "drover cluster up: --subnet: a number (node i gets 127.0.S.(10+i)), not '1.5'\n" });
  });

  it('exits 1 naming the error code when the cluster refuses, before touching anything', async () => {
    const result = await cluster('down', '--name', 'Bad');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("drover cluster down: cluster name 'Bad' is not valid: 1 to 6 lowercase letters and digits, starting with a letter (demo, t1, lab2) (DROVER_CLUSTER_NAME_INVALID)\n");
  });

  it('exits 1 naming DROVER_CLUSTER_NOT_FOUND when kill, partition or heal names a cluster that is not recorded', async () => {
    for (const argv of [['kill', 'n1', '--name', 'zq9x'], ['partition', 'n1', '--name', 'zq9x'], ['heal', '--name', 'zq9x']]) {
      const result = await cluster(...argv);
      expect(result.code, argv.join(' ')).toBe(1);
      expect(result.stderr, argv.join(' ')).toMatch(/no local cluster named 'zq9x' .*\(DROVER_CLUSTER_NOT_FOUND\)\n$/);
    }
  });
});
