import { describe, expect, it } from 'vitest';
import { FrameDecoder, dataEndFrame, dataHeader, encodeMessage } from './tls-frames.ts';

function collect() {
  const seen: Array<unknown> = [];
  const decoder = new FrameDecoder({
    message: (m) => seen.push({ message: m }),
    data: (d) => seen.push({ data: d.toString() }),
    dataEnd: () => seen.push('end'),
  });
  return { seen, decoder };
}

describe('the tls transport framing', () => {
  it('decodes messages, data and the end of data however the bytes are split', () => {
    const wire = Buffer.concat([encodeMessage({ id: 1, op: 'receive' }), dataHeader(11), Buffer.from('hello world'), dataEndFrame(), encodeMessage({ id: 2 })]);
    for (const step of [1, 2, 3, 7, wire.length]) {
      const { seen, decoder } = collect();
      for (let i = 0; i < wire.length; i += step) decoder.push(wire.subarray(i, i + step));
      const data = seen.filter((s): s is { data: string } => typeof s === 'object' && s !== null && 'data' in s).map((s) => s.data).join('');
      expect(data).toBe('hello world');
      expect(seen.filter((s) => typeof s !== 'object' || !('data' in (s as object)))).toEqual([{ message: { id: 1, op: 'receive' } }, 'end', { message: { id: 2 } }]);
    }
  });

  it('passes data on without waiting for the whole frame', () => {
    const { seen, decoder } = collect();
    decoder.push(Buffer.concat([dataHeader(1000), Buffer.from('abc')]));
    expect(seen).toEqual([{ data: 'abc' }]);
  });

  it('rejects unknown frame types and oversized messages', () => {
    expect(() => collect().decoder.push(Buffer.from([9, 0, 0, 0, 0]))).toThrow(expect.objectContaining({ code: 'DROVER_TRANSFER_PROTOCOL' }));
    expect(() => collect().decoder.push(Buffer.from([1, 0xff, 0, 0, 0]))).toThrow(expect.objectContaining({ code: 'DROVER_TRANSFER_PROTOCOL' }));
  });
});
