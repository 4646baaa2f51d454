import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_BYTES, parseOriginalCommand } from './ssh-protocol.ts';

describe("drover-receive's command and framing", () => {
  it('accepts exactly its three verbs and refuses a shell, zfs itself, extra words and an interactive login', () => {
    expect(parseOriginalCommand('drover-receive session')).toBe('session');
    expect(parseOriginalCommand('drover-receive receive')).toBe('receive');
    expect(parseOriginalCommand('drover-receive resident')).toBe('resident');
    for (const bad of ['sh -s', 'id', 'zfs receive -u tank/x', 'drover-receive session; id', 'drover-receive  session', 'drover-receive receive tank/x', 'drover-receive resident tank/x', '', undefined]) {
      expect(() => parseOriginalCommand(bad)).toThrow(expect.objectContaining({ code: 'DROVER_SSH_RECEIVE_REFUSED' }));
    }
  });

  it('splits lines across chunks and refuses one longer than the limit', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((l) => lines.push(l));
    splitter.push(Buffer.from('{"a":1}\n{"b"'));
    splitter.push(Buffer.from(':2}\n\n'));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '']);
    const long = new LineSplitter(() => {});
    expect(() => long.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61))).toThrow(expect.objectContaining({ code: 'DROVER_SSH_PROTOCOL' }));
  });
});
