import type { NodePaths } from './layout.ts';

/** Configuration text and argument lists of a node's daemons. Pure. */

/** AES-GCM first: on machines with AES-NI it is the fastest cipher for `zfs send` streams. */
export const SSH_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'];

export function renderSshdConfig(address: string, port: number, paths: NodePaths): string {
  return [
    '# Written by the drover local-cluster harness; one sshd per node.',
    `ListenAddress ${address}:${port}`,
    `HostKey ${paths.sshHostKey}`,
    `PidFile ${paths.sshPidFile}`,
    `AuthorizedKeysFile ${paths.sshAuthorizedKeys}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes yes',
    `Ciphers ${SSH_CIPHERS.join(',')}`,
    // Agents keep one connection per peer, but tests open and close many in a row.
    'MaxStartups 64:30:128',
    'MaxSessions 64',
    'PrintMotd no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'LogLevel INFO',
    '',
  ].join('\n');
}

export interface DockerdArgsInput {
  cluster: string;
  node: string;
  address: string;
  bridge: string;
  paths: NodePaths;
}

/**
 * dockerd for one node: everything it owns under the node's paths, its own bridge, no
 * iptables rules (the harness must not touch the host's firewall), and published ports
 * bound to the node's loopback address by default so `-p 8080:80` on node 2 answers on
 * 127.0.x.12:8080 only. The userland proxy does the publishing, since iptables is off.
 */
export function dockerdArgs({ cluster, node, address, bridge, paths }: DockerdArgsInput): string[] {
  return [
    '--config-file', paths.dockerConfig,
    '--host', `unix://${paths.dockerSocket}`,
    '--data-root', paths.dockerDataRoot,
    '--exec-root', paths.dockerExecRoot,
    '--pidfile', paths.dockerPidFile,
    '--bridge', bridge,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--ip', address,
    '--userland-proxy=true',
    '--storage-driver', 'overlay2',
    '--cgroup-parent', `/${paths.cgroupParent}`,
    '--label', `drover.cluster=${cluster}`,
    '--label', `drover.node=${node}`,
  ];
}

/**
 * dockerd's config file. Written even when nearly empty, so the host's
 * /etc/docker/daemon.json never applies to a node. The key path gives each node's engine
 * its own id (`docker info` ID) instead of the host's /etc/docker/key.json; 20.10 accepts
 * it only in the file.
 */
export function dockerdConfig(paths: NodePaths): string {
  return `${JSON.stringify({ 'deprecated-key-path': paths.dockerKey }, null, 2)}\n`;
}
