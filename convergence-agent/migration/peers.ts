/**
 * The receiving side of a migration as a transfer `Peer` (transfer/types.ts), built from the
 * target node's reported endpoints and this agent's transport settings (agent.yml):
 * - ssh: the target's OpenSSH server (`transfer.ssh`: address, port, user, pinned host key
 *   fingerprint, pool), this agent's private key;
 * - tls: the target agent's mutual-TLS endpoint (`transfer.tls`), this agent's cluster identity.
 * One peer per target node, kept between rounds and migrations: the final delta rides a warm
 * connection (a new ssh connection's setup was ~0.3 s of a 0.76 s handoff).
 */
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Node } from '#common/model.ts';
import { SshPeer } from '../transfer/ssh-peer.ts';
import type { TlsIdentity } from '../transfer/tls-certs.ts';
import { TlsPeer } from '../transfer/tls-peer.ts';
import type { Peer } from '../transfer/types.ts';

export interface TransportSettings {
  transport: 'ssh' | 'tls';
  /** This agent's ssh private key (read when the first ssh peer is made). */
  sshPrivateKey?: () => Promise<string | Buffer>;
  /** This agent's cluster identity for mutual TLS. */
  tlsIdentity?: () => Promise<TlsIdentity>;
  log?: Logger;
}

export interface PeerSource {
  /** A peer for `node` (cached); throws DROVER_MIGRATION_NO_TRANSPORT when it cannot be reached with this agent's transport. */
  peerFor(node: Node): Promise<Peer>;
  close(): Promise<void>;
}

export class TransportPeers implements PeerSource {
  private readonly peers = new Map<string, { key: string; peer: Peer }>();

  constructor(private readonly settings: TransportSettings) {}

  async peerFor(node: Node): Promise<Peer> {
    const key = JSON.stringify([this.settings.transport, node.transfer]);
    const cached = this.peers.get(node.uuid);
    if (cached?.key === key) return cached.peer;
    if (cached) await cached.peer.close().catch(() => {});
    const peer = await this.make(node);
    this.peers.set(node.uuid, { key, peer });
    return peer;
  }

  async close(): Promise<void> {
    const all = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(all.map((p) => p.peer.close().catch(() => {})));
  }

  private async make(node: Node): Promise<Peer> {
    const { settings } = this;
    if (settings.transport === 'ssh') {
      const ssh = node.transfer.ssh;
      if (!ssh) throw noTransport(node, 'it reports no ssh endpoint (transfer.ssh)');
      if (!ssh.pool) throw noTransport(node, 'its ssh endpoint names no pool (an older agent?)');
      if (!settings.sshPrivateKey) throw noTransport(node, 'this agent has no ssh private key (agent.yml ssh.private_key_file)');
      return new SshPeer({
        id: node.uuid,
        host: ssh.host,
        port: ssh.port,
        user: ssh.user,
        hostKeyFingerprint: ssh.host_key_fingerprint,
        privateKey: await settings.sshPrivateKey(),
        pool: ssh.pool,
        ...(settings.log ? { log: settings.log } : {}),
      });
    }
    const tls = node.transfer.tls;
    if (!tls) throw noTransport(node, 'it reports no tls endpoint (transfer.tls)');
    if (!settings.tlsIdentity) throw noTransport(node, 'this agent has no tls identity (agent.yml tls.ca_file, cert_file, key_file)');
    return new TlsPeer({ id: node.uuid, host: tls.host, port: tls.port, identity: await settings.tlsIdentity(), ...(node.identity ? { expectedName: node.identity.name } : {}) });
  }
}

function noTransport(node: Node, why: string): DroverError {
  return new DroverError('DROVER_MIGRATION_NO_TRANSPORT', `node ${node.uuid} (${node.host}) cannot receive a migration: ${why}`, {
    detail: { node: node.uuid },
  });
}
