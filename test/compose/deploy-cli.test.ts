import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from '../../cli/dispatch.ts';
import { startControl, type InProcessControl } from '../cli/control-in-process.ts';
import { CORPUS } from './corpus-deploy.ts';

// `drover deploy --dry-run` on corpus files through the real command line (flags, .env beside
// the file, warnings on stderr), against the real control service in process.
async function drover(argv: string[], control: string) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { DROVER_CONTROL: control },
    cwd: CORPUS,
    sleep: async () => {},
  });
  return { code, stdout, stderr };
}

let control: InProcessControl;
beforeEach(async () => {
  control = await startControl();
});
afterEach(async () => {
  await control.close();
});

const topology = '../../topology/empty.yml';

it('deploys with --profile (repeated) and reports the container_name mapping', async () => {
  const run = await drover(['deploy', topology, 'profiles-tools.yml', '--dry-run', '--profile', 'debug', '--profile', 'dev'], control.url);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('+ application "adminer"');
  expect(run.stdout).toContain('+ application "mailhog"');
  const grafana = await drover(['deploy', topology, 'grafana.yml', '--dry-run'], control.url);
  expect(grafana.stdout).toContain('+ application "grafana" (container_name "grafana": its container is "drover-grafana", labelled drover.container-name=grafana)');
});

it('reads --env-file instead of .env, and stops on a required variable that is not set', async () => {
  const run = await drover(['deploy', topology, 'postgres.yml', '--dry-run', '--json', '--env-file', 'mariadb.env'], control.url);
  expect(run.code).toBe(0);
  // mariadb.env has no POSTGRES_VERSION: the default applies, nothing to warn about
  expect(run.stderr).toBe('');
  const required = await drover(['deploy', topology, 'refuse-required-var.yml', '--dry-run'], control.url);
  expect(required.code).toBe(1);
  expect(required.stderr).toContain('refuse-required-var.yml:6:26: required variable DB_PASSWORD is missing a value: DB_PASSWORD must be set');
});

it('prints every problem of a refused file', async () => {
  const run = await drover(['deploy', topology, 'refuse-pihole.yml', '--dry-run'], control.url);
  expect(run.code).toBe(1);
  expect(run.stderr).toContain('refuse-pihole.yml: 2 problems');
  expect(run.stderr).toContain('refuse-pihole.yml:14:9: service "pihole": key "volumes[0]"');
  expect(run.stderr).toContain('refuse-pihole.yml:15:9: service "pihole": key "volumes[1]"');
});
