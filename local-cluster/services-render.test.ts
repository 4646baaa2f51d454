import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../convergence-agent/config.ts';
import { controlUrl, controlUrls, etcdEndpoints, renderAgentConfig, renderProxyConfig, serviceSpecs } from './services-render.ts';
import type { LocalCluster, LocalNode } from './types.ts';

function node(index: number, subnet: number, cluster: string): LocalNode {
  const address = `127.0.${subnet}.${10 + index}`;
  return {
    index,
    name: `n${index}`,
    uuid: `6cb3c9c7-c26e-49f5-b41b-692e3e7d1f0${index}`,
    address,
    pool: `drover-${cluster}-n${index}`,
    stateDir: `/var/lib/drover/clusters/${cluster}/n${index}`,
    dockerSocket: `/run/drover/${cluster}/n${index}/docker.sock`,
    dockerHost: `unix:///run/drover/${cluster}/n${index}/docker.sock`,
    ssh: { host: address, port: 22, user: 'root', hostKeyFingerprint: `SHA256:${'A'.repeat(42)}${index}`, hostPublicKey: 'ssh-ed25519 AAAA' },
    pluginName: cluster === 'demo' ? `drover-n${index}` : `drover-${cluster}-n${index}`,
  };
}

function cluster(name: string, subnet: number, nodes: number): LocalCluster {
  const root = `/var/lib/drover/clusters/${name}`;
  return {
    name,
    root,
    nodes: Array.from({ length: nodes }, (_, i) => node(i + 1, subnet, name)),
    sshClientKey: { privateKeyPath: `${root}/ssh/agent_ed25519`, publicKey: 'ssh-ed25519 AAAA' },
    ca: { certPath: `${root}/ca/ca.crt`, keyPath: `${root}/ca/ca.key` },
  };
}

describe('drover services on a local cluster', () => {
  it('puts the demo control service on the CLI default address and any other cluster on its node 1 address, over https', () => {
    expect(controlUrl(cluster('demo', 0, 3))).toBe('https://127.0.0.1:4523');
    expect(controlUrl(cluster('t4', 4, 2))).toBe('https://127.0.4.11:4523');
  });

  it('gives a cluster of three control services an etcd member and a control service per address, and every node process all three URLs', () => {
    const c = { ...cluster('t4', 4, 2), controls: 3 };
    expect(controlUrls(c)).toEqual(['https://127.0.4.11:4523', 'https://127.0.4.12:4523', 'https://127.0.4.13:4523']);
    expect(controlUrls({ ...cluster('demo', 0, 3), controls: 3 })).toEqual(['https://127.0.0.1:4523', 'https://127.0.0.2:4523', 'https://127.0.0.3:4523']);
    expect(etcdEndpoints(c)).toEqual(['http://127.0.4.11:12379', 'http://127.0.4.12:12379', 'http://127.0.4.13:12379']);
    expect(etcdEndpoints(cluster('t4', 4, 2))).toEqual([]);
    const specs = serviceSpecs(c);
    expect(specs.slice(0, 6).map((s) => s.name)).toEqual(['m1-etcd', 'm2-etcd', 'm3-etcd', 'c1-control', 'c2-control', 'c3-control']);
    const m2 = specs.find((s) => s.name === 'm2-etcd')!;
    expect(m2.executable).toBe(true);
    expect(m2.args.join(' ')).toContain('--initial-cluster m1=http://127.0.4.11:12380,m2=http://127.0.4.12:12380,m3=http://127.0.4.13:12380');
    expect(m2.args.join(' ')).toContain('--data-dir /var/lib/drover/clusters/t4/services/etcd/m2');
    const c2 = specs.find((s) => s.name === 'c2-control')!.args.join(' ');
    expect(c2).toContain('--listen 127.0.4.12:4523');
    expect(c2).toContain('--store etcd --etcd-endpoints http://127.0.4.11:12379,http://127.0.4.12:12379,http://127.0.4.13:12379 --identity c2 --advertise https://127.0.4.12:4523');
    expect(c2).toContain('--secrets-key /var/lib/drover/clusters/t4/services/control.key');
    expect((parse(renderAgentConfig(c, c.nodes[0]!)) as { control_url: unknown }).control_url).toEqual(controlUrls(c));
    expect((parse(renderProxyConfig(c, c.nodes[0]!)) as { control: unknown }).control).toEqual(controlUrls(c));
    const plugin = specs.find((s) => s.name === 'n1-plugin')!.args;
    expect(plugin[plugin.indexOf('--control') + 1]).toBe(controlUrls(c).join(','));
  });

  it("renders each agent.yml from the harness's node: control and the node's certificate, address, pool, dockerd, sshd endpoint and host key, state dir", () => {
    const c = cluster('t4', 4, 2);
    const yml = parse(renderAgentConfig(c, c.nodes[1]!)) as Record<string, unknown>;
    expect(yml).toEqual({
      control_url: 'https://127.0.4.11:4523',
      control_tls: { ca_file: '/var/lib/drover/clusters/t4/ca/ca.crt', cert_file: '/var/lib/drover/clusters/t4/ca/nodes/n2.crt', key_file: '/var/lib/drover/clusters/t4/ca/nodes/n2.key' },
      state_dir: '/var/lib/drover/clusters/t4/services/n2/agent',
      node_uuid_file: '/var/lib/drover/clusters/t4/n2/uuid',
      address: '127.0.4.12',
      service_subnet: '10.242.4.0/24',
      pool: 'drover-t4-n2',
      docker_socket: '/run/drover/t4/n2/docker.sock',
      transport: 'ssh',
      ssh: { port: 22, user: 'root', host_key_fingerprint: `SHA256:${'A'.repeat(42)}2`, private_key_file: '/var/lib/drover/clusters/t4/ssh/agent_ed25519' },
      labels: { name: 'n2' },
      poll_interval_ms: 1000,
      stop_timeout_seconds: 10,
      metrics_listen: '127.0.4.12:9524',
    });
  });

  it("renders each proxy.yml listening on its node's address, with its node's certificate, serving names in the node's own service subnet", () => {
    const c = cluster('demo', 0, 3);
    expect(parse(renderProxyConfig(c, c.nodes[2]!))).toEqual({
      control: 'https://127.0.0.1:4523',
      control_ca: '/var/lib/drover/clusters/demo/ca/ca.crt',
      control_cert: '/var/lib/drover/clusters/demo/ca/nodes/n3.crt',
      control_key: '/var/lib/drover/clusters/demo/ca/nodes/n3.key',
      node_uuid: c.nodes[2]!.uuid,
      listen_host: '127.0.0.13',
      service_subnet: '10.243.0.0/24',
      metrics_listen: '127.0.0.13:9525',
      state_dir: '/var/lib/drover/clusters/demo/services/n3/proxy',
    });
  });

  it('keeps every file and every command line of the processes under <root>/services, where teardown looks for them', () => {
    const c = cluster('demo', 0, 2);
    const specs = serviceSpecs(c);
    expect(specs.map((s) => s.name)).toEqual(['control', 'n1-agent', 'n1-proxy', 'n1-plugin', 'n2-agent', 'n2-proxy', 'n2-plugin']);
    for (const spec of specs) {
      expect(spec.args.some((arg) => arg.startsWith('/var/lib/drover/clusters/demo/services/'))).toBe(true);
      expect([spec.pidFile, spec.logFile, ...Object.keys(spec.files)].every((p) => p.startsWith('/var/lib/drover/clusters/demo/services/'))).toBe(true);
    }
    expect(specs.find((s) => s.name === 'n2-plugin')!.args.slice(0, 2)).toEqual(['--name', 'drover-n2']);
  });

  it("writes an agent.yml the agent's own reader accepts, with its defaults left to the agent", () => {
    const c = cluster('t4', 4, 2);
    const config = parseAgentConfig(renderAgentConfig(c, c.nodes[0]!), 'agent.yml');
    expect(config.pool).toBe('drover-t4-n1');
    expect(config.warm_start).toEqual({ enabled: true, busybox: '/bin/busybox' });
    expect(renderAgentConfig(c, c.nodes[0]!)).not.toContain('warm_start');
  });

  it("fails at render time when the harness's node would give a component a configuration it refuses", () => {
    const c = cluster('t4', 4, 2);
    const bad = { ...c.nodes[0]!, ssh: { ...c.nodes[0]!.ssh!, hostKeyFingerprint: 'MD5:00' } };
    expect(() => renderAgentConfig(c, bad)).toThrow(expect.objectContaining({ code: 'DROVER_CLUSTER_CONFIG_INVALID', message: expect.stringContaining('ssh.host_key_fingerprint') }));
    expect(() => renderProxyConfig(c, { ...c.nodes[0]!, uuid: 'n1' })).toThrow(expect.objectContaining({ code: 'DROVER_CLUSTER_CONFIG_INVALID' }));
  });

  it('starts the control service over mutual TLS with the cluster CA, its certificate and the revoked list, with a command line its own reader accepts', () => {
    const control = serviceSpecs(cluster('t4', 4, 1)).find((s) => s.name === 'control')!;
    const ca = '/var/lib/drover/clusters/t4/ca';
    expect(control.args).toEqual(['--listen', '127.0.4.11:4523', '--data-dir', '/var/lib/drover/clusters/t4/services/control', '--tls-ca', `${ca}/ca.crt`, '--tls-cert', `${ca}/control/control.crt`, '--tls-key', `${ca}/control/control.key`, '--revoked', `${ca}/revoked.txt`, '--metrics-listen', '127.0.4.11:9523']);
    expect(control.args).not.toContain('--insecure-plain-http');
    const plugin = serviceSpecs(cluster('t4', 4, 1)).find((s) => s.name === 'n1-plugin')!;
    expect(plugin.args.slice(-8, -2)).toEqual(['--tls-ca', `${ca}/ca.crt`, '--tls-cert', `${ca}/nodes/n1.crt`, '--tls-key', `${ca}/nodes/n1.key`]);
  });
});
