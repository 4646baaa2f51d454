import { describe, expect, it } from 'vitest';
import { nodeOf } from './failures.ts';
import {
  clusterBridgeName,
  hostVethName,
  hubName,
  isClusterNetLink,
  isClusterNetns,
  isolatedNetwork,
  isolatedNodeAddress,
  mountNsFile,
  netnsName,
  nodeExec,
  pluginSocketDir,
} from './netns.ts';
import { controlUrl, serviceSpecs } from './services-render.ts';
import type { LocalCluster } from './types.ts';

function isolated(name: string, subnet: number, nodes: number): LocalCluster {
  const root = `/var/lib/drover/clusters/${name}`;
  return {
    name,
    root,
    isolated: true,
    nodes: Array.from({ length: nodes }, (_, i) => ({
      index: i + 1,
      name: `n${i + 1}`,
      uuid: `6cb3c9c7-c26e-49f5-b41b-692e3e7d1f0${i + 1}`,
      address: isolatedNodeAddress(subnet, i + 1),
      pool: `drover-${name}-n${i + 1}`,
      stateDir: `${root}/n${i + 1}`,
      dockerSocket: `/run/drover/${name}/n${i + 1}/docker.sock`,
      dockerHost: `unix:///run/drover/${name}/n${i + 1}/docker.sock`,
      ssh: { host: isolatedNodeAddress(subnet, i + 1), port: 22, user: 'root', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}`, hostPublicKey: 'ssh-ed25519 AAAA' },
      pluginName: `drover-${name}-n${i + 1}`,
    })),
    sshClientKey: { privateKeyPath: `${root}/ssh/agent_ed25519`, publicKey: 'ssh-ed25519 AAAA' },
    ca: { certPath: `${root}/ca/ca.crt`, keyPath: `${root}/ca/ca.key` },
  };
}

describe('isolated local-cluster nodes', () => {
  it('names every namespace and link after the cluster, within the 15 bytes of an interface name', () => {
    expect(netnsName('abcdef', 9)).toBe('drover-abcdef-n9');
    expect(hubName('abcdef')).toBe('drover-abcdef-hub');
    for (const link of [clusterBridgeName('abcdef'), hostVethName('abcdef', 9)]) expect(link.length).toBeLessThanOrEqual(15);
    expect(isClusterNetns('t4', 'drover-t4-n2')).toBe(true);
    expect(isClusterNetns('t4', 'drover-t4-hub')).toBe(true);
    expect(isClusterNetns('t4', 'drover-t41-n2')).toBe(false);
    expect(isClusterNetLink('t4', 'dvb-t4')).toBe(true);
    expect(isClusterNetLink('t4', 'dvh-t4-3')).toBe(true);
    expect(isClusterNetLink('t4', 'dvb-t41')).toBe(false);
  });

  it('gives node i 10.229.S.(10+i) on a /24 whose .1 is the root namespace (and the control service)', () => {
    expect(isolatedNodeAddress(4, 2)).toBe('10.229.4.12');
    expect(isolatedNetwork(4)).toEqual({ network: '10.229.4.0/24', gateway: '10.229.4.1', cidr: '10.229.4.1/24' });
    expect(controlUrl(isolated('t4', 4, 2))).toBe('https://10.229.4.1:4523');
    expect(controlUrl(isolated('demo', 0, 3))).toBe('https://10.229.0.1:4523');
  });

  it("starts each node's agent, proxy and plugin inside the node's namespaces and the control service outside them", () => {
    const specs = serviceSpecs(isolated('t4', 4, 2));
    expect(specs.find((s) => s.name === 'control')!.prefix).toEqual([]);
    expect(specs.find((s) => s.name === 'n2-plugin')!.prefix).toEqual(['nsenter', '--net=/run/netns/drover-t4-n2', `--mount=${mountNsFile('t4', 2)}`, '--']);
    expect(specs.filter((s) => s.node === 1).map((s) => s.prefix)).toEqual([nodeExec('t4', 1), nodeExec('t4', 1), nodeExec('t4', 1)]);
  });

  it("finds an isolated node's plugin socket in the node's own directory, a shared one's in /run/docker/plugins", () => {
    expect(pluginSocketDir('t4', 2, true)).toBe('/run/drover/t4/n2/plugins');
    expect(pluginSocketDir('t4', 2, false)).toBe('/run/docker/plugins');
  });

  it("takes a node as 'n2' or '2', and names the field and the cluster's nodes when there is no such node", () => {
    const c = isolated('t4', 4, 2);
    expect(nodeOf(c, 'n2').index).toBe(2);
    expect(nodeOf(c, '2').index).toBe(2);
    for (const bad of ['n3', '0', 'node1', '', 'n1; rm']) {
      expect(() => nodeOf(c, bad)).toThrow(expect.objectContaining({ code: 'DROVER_CLUSTER_NODE_UNKNOWN', message: expect.stringContaining('its nodes: n1, n2') }));
    }
  });
});
