import { describe, expect, it } from 'vitest';
import type { Application, ObservedContainer } from '#common/model.ts';
import { logsSourceOf, type ReportedNode } from './logs-node.ts';

const N1 = '00000000-0000-4000-8000-000000000001';
const N2 = '00000000-0000-4000-8000-000000000002';

function app(name: string, extra: Partial<Application> = {}): Application {
  return { name, image: 'busybox', ports: [], volumes: [], links: [], environment: {}, restart_policy: { name: 'never' }, labels: {}, ...extra } as Application;
}
function node(uuid: string, containers: Record<string, boolean>): ReportedNode {
  return { uuid, containers: new Map(Object.entries(containers).map(([name, running]) => [name, { name, running } as ObservedContainer])) };
}

// `drover logs web` for an application with several instances, and `drover logs web.2`.
const web = app('web', { instances: 2, placed: [{ id: 1, node_uuid: N1, revision: 0 }, { id: 2, node_uuid: N2, revision: 0 }] });
const db = app('db', { node_uuid: N1 });
const lookup = (name: string) => [web, db].find((a) => a.name === name);

describe('whose output drover logs shows', () => {
  it('shows a single application from the node that runs it', () => {
    expect(logsSourceOf('db', lookup, [node(N2, {}), node(N1, { db: true })])).toEqual({ container: 'db', uuid: N1 });
  });

  it("shows an application with instances through its first running instance's container", () => {
    expect(logsSourceOf('web', lookup, [node(N1, { 'web.1': false }), node(N2, { 'web.2': true })])).toEqual({ container: 'web.2', uuid: N2 });
    expect(logsSourceOf('web', lookup, [node(N1, { 'web.1': false }), node(N2, {})])).toEqual({ container: 'web.1', uuid: N1 });
  });

  it('shows one instance named as drover status lists it, and knows no instance that is not placed', () => {
    expect(logsSourceOf('web.1', lookup, [node(N1, { 'web.1': true }), node(N2, { 'web.2': true })])).toEqual({ container: 'web.1', uuid: N1 });
    expect(logsSourceOf('web.7', lookup, [node(N1, { 'web.1': true })])).toBeUndefined();
    expect(logsSourceOf('db.1', lookup, [node(N1, { db: true })])).toBeUndefined();
    expect(logsSourceOf('nope', lookup, [])).toBeUndefined();
  });

  it('says no node reports it when none does', () => {
    expect(logsSourceOf('web', lookup, [node(N1, {}), node(N2, {})])).toEqual({ container: 'web.1', uuid: null });
  });
});
