import { describe, expect, it } from 'vitest';
import { restrictedAuthorizedKey } from './keys.ts';

describe('the restricted authorized_keys line', () => {
  const publicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC37jxGtOIt6gLeJBwPhLgLE+Uofzb/BpyIw7ItPDi6k';

  it('forces drover-receive, restricts everything else, and limits the source addresses when asked', () => {
    expect(restrictedAuthorizedKey({ publicKey, command: ['/usr/bin/drover-receive', '--pool', 'tank'], comment: 'drover-agents' })).toBe(
      `command="/usr/bin/drover-receive --pool tank",restrict ${publicKey} drover-agents\n`,
    );
    expect(restrictedAuthorizedKey({ publicKey, command: ['/usr/bin/drover-receive', '--pool', 'tank'], from: ['10.0.0.0/24', '192.0.2.7'], comment: 'drover-agents' })).toBe(
      `command="/usr/bin/drover-receive --pool tank",restrict,from="10.0.0.0/24,192.0.2.7" ${publicKey} drover-agents\n`,
    );
  });

  it('refuses words that would need quoting or could break out of the option, naming each', () => {
    expect(() => restrictedAuthorizedKey({ publicKey, command: ['/usr/bin/drover-receive', '--pool', 'tank"; id'], from: ['10.0.0.0/24",no-restrict'], comment: 'x' })).toThrow(
      expect.objectContaining({ code: 'DROVER_SSH_KEY_INVALID', message: expect.stringMatching(/command\[2\].*from\[0\]/) }),
    );
    expect(() => restrictedAuthorizedKey({ publicKey: 'garbage', command: ['x'], comment: 'x' })).toThrow(expect.objectContaining({ message: expect.stringContaining('publicKey') }));
  });
});
