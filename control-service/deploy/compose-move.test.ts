import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { parseDeployment } from './index.ts';

const noPins = { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' };
const parse = (service: string) =>
  parseDeployment({ project: 'demo', compose: { file: 'compose.yml', text: `services:\n  db:\n    image: registry.example/postgres:15\n${service}` }, topology: noPins, nodes: [] });

function refusal(service: string): string {
  try {
    parse(service);
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('x-drover.move in a Compose service', () => {
  it('reads a before_stop command written as a string into an argv with the default 60 s timeout', () => {
    const { applications } = parse(`    x-drover:\n      move:\n        before_stop: psql -U postgres -c "CHECKPOINT"\n`);
    expect(applications[0]!.move).toEqual({ before_stop: { command: ['psql', '-U', 'postgres', '-c', 'CHECKPOINT'], timeout_seconds: 60 } });
    expect(applications[0]!.placement).toBeUndefined();
  });

  it('reads the long form: exec as a list and a Compose duration as the timeout', () => {
    const { applications } = parse(`    x-drover:\n      move: { before_stop: { exec: ["redis-cli", "BGREWRITEAOF"], timeout: 1m30s } }\n`);
    expect(applications[0]!.move).toEqual({ before_stop: { command: ['redis-cli', 'BGREWRITEAOF'], timeout_seconds: 90 } });
  });

  it('leaves an application without the key without a move policy', () => {
    expect(parse('')).toMatchObject({ applications: [{ name: 'db' }] });
    expect(parse('').applications[0]!.move).toBeUndefined();
  });

  it('refuses bad values naming the file, the service and the key, every problem at once', () => {
    const all = refusal(`    x-drover:\n      move: { before_stop: { exec: "", timeout: soon } }\n    ports: ["x"]\n`);
    expect(all).toMatch(/service "db": key "x-drover\.move\.before_stop\.exec": must name a command/);
    expect(all).toMatch(/key "ports/);
    expect(refusal(`    x-drover:\n      move: { before_stop: { exec: [true], timeout: 2h } }\n`)).toMatch(/key "x-drover\.move\.before_stop/);
    expect(refusal(`    x-drover:\n      move: { before_stop: { exec: checkpoint, timeout: 2h } }\n`)).toMatch(/key "x-drover\.move\.before_stop\.timeout": "2h" must be between 1s and 1h/);
    expect(refusal(`    x-drover:\n      move: { before_stop: { exec: checkpoint, timeout: soon } }\n`)).toMatch(/key "x-drover\.move\.before_stop\.timeout": "soon" is not a duration/);
    expect(refusal(`    x-drover:\n      move: { after_start: warm-up }\n`)).toMatch(/unsupported key "x-drover\.move\.after_start": drover has no after-start hook/);
    expect(refusal(`    x-drover:\n      move: checkpoint\n`)).toMatch(/key "x-drover\.move": must be a mapping/);
    expect(refusal(`    x-drover:\n      move: { before_stop: 'psql -c "CHECKPOINT' }\n`)).toMatch(/key "x-drover\.move\.before_stop": cannot split/);
  });
});
