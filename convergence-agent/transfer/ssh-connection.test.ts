import { describe, expect, it } from 'vitest';
import { remoteCommand, shellQuote, sshFingerprint } from './ssh-connection.ts';

describe('ssh command lines and host keys', () => {
  it('leaves validated names bare and quotes anything else for the remote shell', () => {
    expect(shellQuote('tank/drover/6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b@drover-1')).toBe('tank/drover/6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b@drover-1');
    expect(shellQuote("a'b; rm -rf /")).toBe(`'a'\\''b; rm -rf /'`);
    expect(shellQuote('$(id)')).toBe(`'$(id)'`);
    expect(remoteCommand(['zfs', 'receive', '-u', 'tank/drover/x'])).toBe('LC_ALL=C zfs receive -u tank/drover/x');
  });

  it('computes fingerprints the way ssh-keygen -l prints them', () => {
    // ssh-keygen -l of this key blob prints SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU (the empty input).
    expect(sshFingerprint(Buffer.alloc(0))).toBe('SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU');
  });
});
