import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { parseDeployment } from './index.ts';

const noPins = { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' };
const parse = (service: string) =>
  parseDeployment({ project: 'demo', compose: { file: 'compose.yml', text: `services:\n  db:\n    image: redis:7\n${service}` }, topology: noPins, nodes: [] });

function refusal(service: string): string {
  try {
    parse(service);
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('x-drover.replication in a Compose service', () => {
  it('reads replicas, a Compose interval and both retention grids into the application policy', () => {
    const { applications } = parse(`    x-drover:\n      replication:\n        replicas: 2\n        interval: 1m30s\n        retention: { primary: "1x1m(keep=all) | 24x1h", replicas: "7x1d" }\n`);
    expect(applications[0]!.replication).toEqual({ replicas: 2, interval_seconds: 90, retention: { primary: '1x1m(keep=all) | 24x1h', replicas: '7x1d' } });
    expect(applications[0]!.placement).toBeUndefined();
  });

  it('fills the defaults: 10 s and the default grid for both sides', () => {
    const { applications } = parse(`    x-drover:\n      replication: { replicas: 1 }\n`);
    expect(applications[0]!.replication).toEqual({ replicas: 1, interval_seconds: 10, retention: { primary: '1x1m(keep=all) | 24x1h | 7x1d', replicas: '1x1m(keep=all) | 24x1h | 7x1d' } });
  });

  it('refuses bad values naming the file, the service and the key', () => {
    expect(refusal(`    x-drover:\n      replication: { replicas: 2, interval: 500ms }\n`)).toMatch(/^compose\.yml:\d+:\d+: service "db": key "x-drover\.replication\.interval": "500ms" must be between 1s and 24h/);
    expect(refusal(`    x-drover:\n      replication: { replicas: 2, interval: soon }\n`)).toMatch(/service "db": key "x-drover\.replication\.interval": "soon" is not a duration/);
    expect(refusal(`    x-drover:\n      replication: { replicas: 17 }\n`)).toMatch(/service "db": key "x-drover\.replication\.replicas"/);
    expect(refusal(`    x-drover:\n      replication: { replicas: 1, retention: { primary: "24 hours" } }\n`)).toMatch(/service "db": key "x-drover\.replication\.retention\.primary": "24 hours" is not a grid term/);
    expect(refusal(`    x-drover:\n      replication: { replicas: 1, copies: 3 }\n`)).toMatch(/service "db": unsupported key "x-drover\.replication\.copies"/);
  });

  it('reads freeze_during_snapshot: true into the policy, and leaves it out when false or absent', () => {
    expect(parse(`    x-drover:\n      replication: { replicas: 1, freeze_during_snapshot: true }\n`).applications[0]!.replication).toMatchObject({ replicas: 1, freeze_during_snapshot: true });
    expect(parse(`    x-drover:\n      replication: { replicas: 1, freeze_during_snapshot: false }\n`).applications[0]!.replication).not.toHaveProperty('freeze_during_snapshot');
    expect(parse(`    x-drover:\n      replication: { replicas: 1 }\n`).applications[0]!.replication).not.toHaveProperty('freeze_during_snapshot');
  });

  it('refuses a freeze_during_snapshot that is not a boolean, naming the key', () => {
    expect(refusal(`    x-drover:\n      replication: { replicas: 1, freeze_during_snapshot: sometimes }\n`)).toMatch(/service "db": key "x-drover\.replication\.freeze_during_snapshot"/);
  });

  it('refuses deploy.replicas above 1 for a service with a volume, pointing at replication for standby copies', () => {
    expect(refusal(`    volumes: [data:/data]\n    deploy:\n      replicas: 2\nvolumes:\n  data: {}\n`)).toMatch(/service "db": key "deploy\.replicas": a service with a volume runs as one container.*x-drover: \{ replication: \{ replicas: N \} \}/);
  });
});
