import { defineConfig } from 'vitest/config';

// Three tiers (docs/DESIGN.md §14):
// - unit: pure code and in-process fakes; no dockerd, zfs or sshd; under a minute.
// - integration: one real component at a time (zfs-fuse pools, dockerd, sshd, sockets).
// - e2e: the local cluster with drover's own processes.
// Integration and e2e share the machine's zfs-fuse daemon and docker engines, so files
// run one at a time there.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/*.int.test.ts', '**/*.e2e.test.ts'],
          testTimeout: 10_000,
          // Unit files share their worker's module graph instead of re-importing it per file:
          // the tier took 60 s on two cores, two thirds of it importing, and takes ~30 s so.
          // Unit tests hold no process-wide state (no module mocking; clocks are injected).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          // Each file's local cluster goes down while the next file sets up; the tier waits for the last.
          globalSetup: ['test/support/global-setup.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['**/*.e2e.test.ts'],
          // Not the integration tier's overlapped teardowns: with drover's services on the
          // clusters they made three e2e files 5-14 % slower (bench/RESULTS.md "Test tiers").
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
