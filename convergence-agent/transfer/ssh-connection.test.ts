import { describe, expect, it } from 'vitest';
import { SshConnection, sshFingerprint } from './ssh-connection.ts';

describe('ssh host keys and what the connection asks of a peer', () => {
  it('computes fingerprints the way ssh-keygen -l prints them', () => {
    // ssh-keygen -l of this key blob prints SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU (the empty input).
    expect(sshFingerprint(Buffer.alloc(0))).toBe('SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU');
  });

  it('refuses to run an arbitrary command on the peer, before connecting', async () => {
    const connection = new SshConnection({ host: '127.0.0.1', port: 1, user: 'root', hostKeyFingerprint: 'SHA256:x', privateKey: 'none' });
    await expect(connection.stream(['sh', '-c', 'id'])).rejects.toMatchObject({ code: 'DROVER_SSH_RECEIVE_REFUSED' });
    await expect(connection.stream(['zfs', 'receive', '-u', 'tank/other'])).rejects.toMatchObject({ code: 'DROVER_SSH_RECEIVE_REFUSED' });
  });
});
