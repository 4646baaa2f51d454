import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { describe, it } from 'vitest';
import { DEFAULT_PUMP_PATH, findNativePump } from '../../convergence-agent/transfer/native-pump.ts';

/**
 * Real components a test file needs. When one is missing the file's tests are skipped
 * locally, with the reason in the title, and FAIL under `CI=true` (docs/DESIGN.md §14).
 *
 *   describeWith(['dockerd', 'zfs'], 'the zfs adapter', () => { it(…) });
 */
export type Component = 'root' | 'dockerd' | 'zfs' | 'sshd' | 'nft' | 'native-pump' | 'libfuzzer' | 'prometheus' | 'chromium' | 'etcd';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The browser the dashboard's test drives (Debian's package). */
export const CHROMIUM = '/usr/bin/chromium';

function answers(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 15_000, env: { ...process.env, PATH } });
  return result.status === 0;
}

const checks: Record<Component, () => string | null> = {
  root: () => (process.getuid?.() === 0 ? null : 'not running as root'),
  dockerd: () =>
    answers('docker', ['-H', 'unix:///var/run/docker.sock', 'version', '--format', '{{.Server.Version}}']) ? null : 'dockerd does not answer (docker version)',
  zfs: () => (answers('zpool', ['list', '-H']) ? null : 'the zfs-fuse daemon does not answer (zpool list)'),
  /** nftables (Debian `nftables`) usable: the proxy's kernel path needs it, and root. */
  nft: () => (answers('nft', ['list', 'tables']) ? null : 'nft does not answer (nft list tables; Debian package nftables, as root)'),
  /** The tls transport's native data pump, built by `make -C native` (scripts/host-setup.sh). */
  'native-pump': () => (findNativePump() ? null : `${DEFAULT_PUMP_PATH} is not built (make -C native; needs gcc, libc6-dev, libssl-dev)`),
  /** clang with libFuzzer's runtime (Debian clang + libclang-rt-14-dev): the native frame parser's fuzz target. */
  libfuzzer: () => {
    const found = spawnSync('clang', ['-print-file-name=libclang_rt.fuzzer-x86_64.a'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, PATH } });
    const path = found.status === 0 ? found.stdout.trim() : '';
    try {
      if (!path.startsWith('/')) throw new Error('not found');
      accessSync(path, constants.R_OK);
      return null;
    } catch {
      return 'no clang with libFuzzer (Debian clang, libclang-rt-14-dev)';
    }
  },
  /** Debian's `prometheus` package: the server and its `promtool` (docs/DESIGN.md §25). */
  prometheus: () => (answers('promtool', ['--version']) && answers('prometheus', ['--version']) ? null : 'prometheus or promtool missing (Debian package prometheus)'),
  /** Debian's `chromium`, driven by playwright-core in the dashboard's browser test (docs/DESIGN.md §26). */
  chromium: () => (answers(CHROMIUM, ['--version']) ? null : `${CHROMIUM} does not answer (Debian package chromium)`),
  /** Debian's `etcd-server` (`etcd`, `etcdctl`): the control plane on etcd (docs/DESIGN.md §28). */
  etcd: () => (answers('etcd', ['--version']) && answers('etcdctl', ['version']) ? null : 'etcd or etcdctl missing (Debian package etcd-server)'),
  sshd: () => {
    try {
      accessSync('/usr/sbin/sshd', constants.X_OK);
      return null;
    } catch {
      return 'no /usr/sbin/sshd';
    }
  },
};

const cache = new Map<Component, string | null>();

/** Why `components` cannot be used here; empty when all of them answer. */
export function missing(components: Component[]): string[] {
  const reasons: string[] = [];
  for (const component of components) {
    if (!cache.has(component)) cache.set(component, checks[component]());
    const reason = cache.get(component);
    if (reason) reasons.push(reason);
  }
  return reasons;
}

/** What the local cluster harness needs. */
export const LOCAL_CLUSTER: Component[] = ['root', 'dockerd', 'zfs', 'sshd'];

/** `describe`, skipped locally (reason in the title) or failing under CI when a component is missing. */
export function describeWith(components: Component[], title: string, body: () => void): void {
  const reasons = missing(components);
  if (reasons.length === 0) {
    describe(title, body);
  } else if (process.env.CI === 'true') {
    describe(title, () => {
      it(`finds ${components.join(', ')} on this machine`, () => {
        throw new Error(`CI=true and a real component is missing: ${reasons.join('; ')} — run scripts/host-setup.sh`);
      });
    });
  } else {
    describe.skip(`${title} [skipped: ${reasons.join('; ')}]`, body);
  }
}
