import { describe, expect, it } from 'vitest';
import { parseServiceSubnet } from '#common/service-subnet.ts';
import { ADDRESS_A, NODE_A, app } from '../testing/fixtures.ts';
import { containerSpec } from './container-spec.ts';

const subnet = parseServiceSubnet('10.241.3.0/24')!;
const spec = (a: ReturnType<typeof app>, withSubnet = true) =>
  containerSpec(a, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map(), ...(withSubnet ? { serviceSubnet: subnet } : {}) });

describe('container spec: names, exposed and UDP ports (docs/DESIGN.md §21)', () => {
  it("resolves each peer to its slot's address in this node's service subnet", () => {
    const web = app('web', { name_slot: 1, peers: { web: 1, db: 2, database: 2 } });
    expect(spec(web).extraHosts).toEqual(['database:10.241.3.2', 'db:10.241.3.2', 'web:10.241.3.1']);
  });

  it('leaves out a peer whose slot the subnet cannot hold, and every peer without a subnet', () => {
    const web = app('web', { peers: { db: 2, far: 300 } });
    expect(spec(web).extraHosts).toEqual(['db:10.241.3.2']);
    expect(spec(web, false).extraHosts).toBeUndefined();
  });

  it('publishes exposed ports beside published ones, and UDP ports apart', () => {
    const dns = app('dns', { ports: [{ internal: 53, external: 53, protocol: 'udp' }, { internal: 53, external: 53 }], expose: [{ internal: 8080 }, { internal: 5353, protocol: 'udp' }] });
    const s = spec(dns);
    expect(s.ports).toEqual([53, 8080]);
    expect(s.udpPorts).toEqual([53, 5353]);
  });

  it('adds nothing to the spec of an application without names or UDP, so its config hash stays what it was', () => {
    const plain = spec(app('web', { ports: [{ internal: 80, external: 8080 }] }));
    expect(plain).not.toHaveProperty('udpPorts');
    expect(plain).not.toHaveProperty('extraHosts');
    expect(spec(app('web', { ports: [{ internal: 80, external: 8080 }], peers: { web: 1 } })).configHash).not.toBe(plain.configHash);
  });
});
