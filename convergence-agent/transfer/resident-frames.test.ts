import { describe, expect, it } from 'vitest';
import { END_FRAME, FrameReader, MAX_FRAME_BYTES, frameHeader } from './resident-frames.ts';

function recorder(): { reader: FrameReader; events: string[] } {
  const events: string[] = [];
  const reader = new FrameReader({
    line: (text) => events.push(`line ${text}`),
    data: (chunk) => events.push(`data ${chunk.toString()}`),
    end: () => events.push('end'),
  });
  return { reader, events };
}

describe("the resident receiver's framing", () => {
  it('hands on a header, holds what follows until the header is decided, then the frames up to the end frame', () => {
    const { reader, events } = recorder();
    const wire = Buffer.concat([Buffer.from('{"h":1}\n'), frameHeader(5), Buffer.from('hello'), frameHeader(3), Buffer.from('abc'), END_FRAME, Buffer.from('{"h":2}\n')]);
    // Byte by byte: every boundary falls inside a chunk once.
    for (const byte of wire.subarray(0, 12)) reader.push(Buffer.from([byte]));
    expect(events).toEqual(['line {"h":1}']);
    expect(reader.buffered).toBe(4);
    reader.expectFrames();
    for (const byte of wire.subarray(12)) reader.push(Buffer.from([byte]));
    expect(events.filter((e) => e.startsWith('data')).map((e) => e.slice(5)).join('')).toBe('helloabc');
    expect(events.at(-1)).toBe('end');
    reader.expectLine();
    expect(events.at(-1)).toBe('line {"h":2}');
  });

  it('reads the next header after a refused one, with no frames between', () => {
    const { reader, events } = recorder();
    reader.push(Buffer.from('{"bad":1}\n{"good":1}\n'));
    expect(events).toEqual(['line {"bad":1}']);
    reader.expectLine();
    expect(events).toEqual(['line {"bad":1}', 'line {"good":1}']);
  });

  it('refuses a frame longer than the limit', () => {
    const { reader } = recorder();
    reader.push(Buffer.from('{}\n'));
    reader.expectFrames();
    expect(() => reader.push(frameHeader(MAX_FRAME_BYTES + 1))).toThrow(expect.objectContaining({ code: 'DROVER_SSH_PROTOCOL' }));
  });
});
