import { describe, expect, it } from 'vitest';
import { Desired, type Node } from '#common/model.ts';
import { parseDeployment, planDeploy } from './index.ts';

const nodes: Node[] = [{ uuid: '11111111-1111-4111-8111-111111111111', host: '127.0.0.11', labels: {}, transfer: {} }];
const empty = Desired.parse({ nodes });
const deploy = (desired: Desired, project: string, compose: string) =>
  planDeploy(desired, parseDeployment({ project, compose: { file: 'c.yml', text: compose }, topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' }, nodes }), project).desired;
const byName = (d: Desired) => Object.fromEntries(d.applications.map((a) => [a.name, a]));

const SHOP = `services:
  frontend: { image: web, networks: [front] }
  backend: { image: api, expose: ["3000"], networks: { front: null, back: { aliases: [api] } } }
  mongo: { image: mongo, expose: ["27017"], networks: [back] }
networks: { front: {}, back: {} }
`;

describe('names at deploy (docs/DESIGN.md §21)', () => {
  it('gives each application a slot and resolves only the services that share a network with it', () => {
    const apps = byName(deploy(empty, 'shop', SHOP));
    expect([apps.frontend!.name_slot, apps.backend!.name_slot, apps.mongo!.name_slot]).toEqual([1, 2, 3]);
    expect(apps.frontend!.peers).toEqual({ frontend: 1, backend: 2 });
    expect(apps.backend!.peers).toEqual({ frontend: 1, backend: 2, mongo: 3, api: 2 });
    expect(apps.mongo!.peers).toEqual({ backend: 2, mongo: 3, api: 2 });
  });

  it('puts services without networks on the default network, where all see all', () => {
    const apps = byName(deploy(empty, 'p', 'services:\n  a: { image: x }\n  b: { image: y }\n'));
    expect(apps.a!.peers).toEqual({ a: 1, b: 2 });
    expect(apps.a!.networks).toBeUndefined();
  });

  it('keeps slots across deploys and gives another project other slots', () => {
    const first = deploy(empty, 'shop', SHOP);
    const second = deploy(first, 'blog', 'services:\n  store: { image: redis, networks: { default: { aliases: [db] } } }\n');
    expect(byName(second).store!.name_slot).toBe(4);
    expect(byName(second).store!.peers).toEqual({ store: 4, db: 4 });
    const again = deploy(second, 'shop', SHOP.replace('  frontend: { image: web, networks: [front] }\n', ''));
    expect(byName(again).backend!.name_slot).toBe(2);
    expect(byName(again).backend!.peers).toEqual({ backend: 2, mongo: 3, api: 2 });
    // A slot freed by a removed service is taken by the next new one.
    const more = deploy(again, 'blog', 'services:\n  store: { image: redis }\n  reader: { image: busybox }\n');
    expect(byName(more).reader!.name_slot).toBe(1);
  });
});
