import { describe, expect, it } from 'vitest';
import { LogLines, MAX_LINE_BYTES } from './log-lines.ts';

function frame(kind: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('LogLines', () => {
  it('takes apart docker frames into stdout and stderr lines, whatever the chunks', () => {
    const bytes = Buffer.concat([frame(1, 'ready\nacc'), frame(2, 'warn: x\n'), frame(1, 'epting\n')]);
    const lines = new LogLines(true);
    const out = [];
    for (let i = 0; i < bytes.length; i += 3) out.push(...lines.push(bytes.subarray(i, i + 3)));
    expect(out).toEqual([
      { stream: 'stdout', text: 'ready' },
      { stream: 'stderr', text: 'warn: x' },
      { stream: 'stdout', text: 'accepting' },
    ]);
    expect(lines.end()).toEqual([]);
  });

  it('gives an unfinished last line at the end, and raw output (a TTY) as stdout', () => {
    const lines = new LogLines(false);
    expect(lines.push(Buffer.from('a\r\nb'))).toEqual([{ stream: 'stdout', text: 'a' }]);
    expect(lines.end()).toEqual([{ stream: 'stdout', text: 'b' }]);
  });

  it('holds no endless line: what passes the bound goes out as a piece', () => {
    const lines = new LogLines(false);
    const out = lines.push(Buffer.alloc(MAX_LINE_BYTES + 10, 0x61));
    expect(out).toHaveLength(1);
    expect(out[0]!.text.length).toBe(MAX_LINE_BYTES + 10);
    expect(lines.end()).toEqual([]);
  });
});
