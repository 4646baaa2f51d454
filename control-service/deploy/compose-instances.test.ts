import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { parseDeployment } from './index.ts';

const noPins = { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' };
const parse = (service: string, tail = '') =>
  parseDeployment({ project: 'demo', compose: { file: 'compose.yml', text: `services:\n  web:\n    image: registry.example/httpd:1\n${service}${tail}` }, topology: noPins, nodes: [] });

function refusal(service: string, tail = ''): string {
  try {
    parse(service, tail);
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('deploy.replicas, deploy.mode and deploy.update_config in a Compose service', () => {
  it('reads replicas: 3 into three instances, and replicas: 1 into the classic single application', () => {
    expect(parse('    deploy:\n      replicas: 3\n').applications[0]!.instances).toBe(3);
    const single = parse('    deploy:\n      replicas: 1\n').applications[0]!;
    expect(single.instances).toBeUndefined();
    expect(single.mode).toBeUndefined();
  });

  it('reads mode: global, and update_config with Compose durations', () => {
    const app = parse('    deploy:\n      mode: global\n      update_config: { parallelism: 2, delay: 1m5s, order: start-first, failure_action: rollback, monitor: 30s }\n').applications[0]!;
    expect(app.mode).toBe('global');
    expect(app.update_config).toEqual({ parallelism: 2, delay_seconds: 65, order: 'start-first', failure_action: 'rollback', monitor_seconds: 30 });
  });

  it('refuses several instances of a service with a volume, global with replicas, and a bad update_config, all at once', () => {
    const message = refusal('    volumes: [data:/data]\n    deploy:\n      mode: global\n      replicas: 2\n      update_config: { delay: soon, failure_action: continue }\n', 'volumes:\n  data: {}\n');
    expect(message).toMatch(/key "deploy\.replicas": a global service runs one container per node/);
    expect(message).toMatch(/key "deploy\.mode": a service with a volume runs as one container/);
    expect(message).toMatch(/key "deploy\.update_config\.failure_action": drover pauses or rolls back/);
  });
});
