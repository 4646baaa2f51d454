import { describe, expect, it } from 'vitest';
import { overlaps } from '../../local-cluster/bridge.ts';
import {
  bridgeName,
  bridgeSubnet,
  isClusterBridge,
  isClusterPool,
  nodeAddress,
  nodePaths,
  pluginName,
  poolName,
  validateClusterName,
  validateNodeCount,
  validateRoot,
} from '../../local-cluster/layout.ts';
import { dockerdArgs, dockerdConfig, renderSshdConfig } from '../../local-cluster/render.ts';

describe('local cluster naming', () => {
  it('gives node i the loopback address 127.0.<subnet>.(10+i)', () => {
    expect(nodeAddress(0, 1)).toBe('127.0.0.11');
    expect(nodeAddress(1, 3)).toBe('127.0.1.13');
  });

  it('names the demo cluster plugins drover-n<i> and other clusters drover-<name>-n<i>', () => {
    expect(pluginName('demo', 2)).toBe('drover-n2');
    expect(pluginName('t1', 2)).toBe('drover-t1-n2');
  });

  it('keeps bridge names within the 15 bytes Linux allows, for the longest cluster name', () => {
    expect(bridgeName('abcdef', 9).length).toBeLessThanOrEqual(15);
  });

  it('gives every node of every subnet a bridge network of its own, away from docker0', () => {
    const networks = [0, 1, 2].flatMap((subnet) => [1, 2, 3, 9].map((i) => bridgeSubnet(subnet, i).network));
    for (const [k, a] of networks.entries()) {
      expect(overlaps(a, '172.17.0.0/16')).toBe(false);
      for (const b of networks.slice(k + 1)) expect(overlaps(a, b)).toBe(false);
    }
  });

  it('recognises only its own pools and bridges, not those of a cluster whose name it prefixes', () => {
    expect(isClusterPool('de', poolName('de', 1))).toBe(true);
    expect(isClusterPool('de', poolName('demo', 1))).toBe(false);
    expect(isClusterBridge('de', bridgeName('demo', 1))).toBe(false);
    expect(isClusterBridge('demo', bridgeName('demo', 3))).toBe(true);
  });

  it('rejects cluster names that would not fit the pool, bridge and plugin names', () => {
    expect(() => validateClusterName('Demo')).toThrow(/is not valid: 1 to 6 lowercase letters and digits, starting with a letter/);
    expect(() => validateClusterName('toolong')).toThrow(/is not valid: 1 to 6 lowercase letters and digits, starting with a letter/);
    expect(() => validateClusterName('a-b')).toThrow(/is not valid: 1 to 6 lowercase letters and digits, starting with a letter/);
    expect(() => validateNodeCount(10)).toThrow(/1 to 9/);
    expect(() => validateNodeCount(0)).toThrow(/1 to 9/);
  });

  it('refuses a root it could not safely remove whole', () => {
    for (const root of ['/', '/var', 'relative/dir', '/var/lib/../lib']) expect(() => validateRoot(root)).toThrow(/absolute path/);
    expect(() => validateRoot('/var/lib/drover/clusters/t1')).not.toThrow();
    expect(() => validateRoot('/tmp/c1')).not.toThrow();
  });

  it('keeps docker and containerd socket paths short enough for unix sockets', () => {
    const paths = nodePaths('abcdef', '/var/lib/drover/clusters/abcdef', 9);
    expect(`${paths.dockerExecRoot}/containerd/containerd.sock.ttrpc`.length).toBeLessThan(100);
    expect(paths.dockerSocket.length).toBeLessThan(100);
  });
});

describe('local cluster daemon configuration', () => {
  const paths = nodePaths('t1', '/var/lib/drover/clusters/t1', 2);

  it('binds sshd to the node address only, root by key only, AES-GCM offered first', () => {
    const config = renderSshdConfig('127.0.1.12', 22, paths);
    expect(config).toContain('ListenAddress 127.0.1.12:22');
    expect(config).toContain('PermitRootLogin prohibit-password');
    expect(config).toContain('PasswordAuthentication no');
    expect(config).toContain(`AuthorizedKeysFile ${paths.sshAuthorizedKeys}`);
    expect(config).toMatch(/^Ciphers aes128-gcm@openssh.com,/m);
  });

  it('runs dockerd on its own socket, roots and bridge, without iptables, publishing on the node address', () => {
    const args = dockerdArgs({ cluster: 't1', node: 'n2', address: '127.0.1.12', bridge: 'drv-t1-2', paths });
    const value = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    expect(value('--host')).toBe(`unix://${paths.dockerSocket}`);
    expect(value('--data-root')).toBe(paths.dockerDataRoot);
    expect(value('--exec-root')).toBe(paths.dockerExecRoot);
    expect(value('--pidfile')).toBe(paths.dockerPidFile);
    expect(value('--bridge')).toBe('drv-t1-2');
    expect(value('--ip')).toBe('127.0.1.12');
    expect(args).toContain('--iptables=false');
    expect(args).toContain('drover.node=n2');
  });

  it("gives each node's engine its own key, hence its own id, and never the host's daemon.json", () => {
    expect(JSON.parse(dockerdConfig(paths))).toEqual({ 'deprecated-key-path': paths.dockerKey });
    const args = dockerdArgs({ cluster: 't1', node: 'n2', address: '127.0.1.12', bridge: 'drv-t1-2', paths });
    expect(args[args.indexOf('--config-file') + 1]).toBe(paths.dockerConfig);
  });
});
