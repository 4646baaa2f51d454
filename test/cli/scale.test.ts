import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { runCli } from '../../cli/dispatch.ts';
import { startControl, type InProcessControl } from './control-in-process.ts';

// `drover scale` (docs/DESIGN.md §30) in-process against the real control service over HTTP
// on 127.0.0.1: the number changes, a bad number or an application with a dataset is refused
// naming `instances`, and nothing changes then.
const fixtures = join(import.meta.dirname, '..', 'fixtures');
let control: InProcessControl;
beforeEach(async () => {
  control = await startControl();
});
afterEach(async () => {
  await control.close();
});

async function drover(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { isTTY: false, write: (s: string) => (stdout += s) },
    stderr: { isTTY: false, write: (s: string) => (stderr += s) },
    env: { DROVER_CONTROL: control.url },
    cwd: fixtures,
    sleep: () => control.agentStep(),
  });
  await control.reportAll();
  return { code, stdout, stderr };
}

describe('drover scale', () => {
  it('makes a single application without a dataset run 3 instances, then 1; refuses a bad number and a dataset application naming instances, changing nothing', async () => {
    expect((await drover(['deploy', 'topology/two-nodes.yml', 'compose/web-db.yml', '--project', 'shop'])).code).toBe(0);
    const api = new ApiClient({ baseUrl: control.url });
    const before = await api.containers();

    expect(await drover(['scale', 'cache', 'three'])).toMatchObject({ code: 2, stderr: expect.stringContaining('instances "three" is not a whole number from 0 to 256') });
    expect(await drover(['scale', 'db', '2'])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'drover: Application "db" cannot be scaled: an application with a dataset runs as one instance (its data is on one node); nothing was changed.\n' +
        '  - instances: an application with a dataset runs as one instance (its data is on one node)\n',
    });
    expect(await drover(['scale', 'cahce', '2'])).toEqual({ code: 1, stdout: '', stderr: 'drover: no application "cahce" (drover status lists them)\n' });
    expect(await api.containers()).toEqual(before);

    expect(await drover(['scale', 'cache', '3'])).toMatchObject({ code: 0, stdout: '"cache": 1 → 3 instances (drover status shows each as it starts or drains)\n' });
    const three = await api.application('cache');
    expect(three.instances?.filter((i) => !i.draining)).toHaveLength(3);
    expect(three.node_uuid).toBeNull();
    expect((await drover(['scale', 'cache', '1'])).code).toBe(0);
    expect((await api.application('cache')).instances?.filter((i) => !i.draining)).toHaveLength(1);
  });
});
