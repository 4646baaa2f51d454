import { describe, expect, it } from 'vitest';
import { receivedOf } from './received.ts';

describe("a receive verdict's received snapshot, as the sender reads it", () => {
  it('takes a snapshot name and a decimal guid', () => {
    expect(receivedOf({ snapshot: 'drover-20261207T120000000Z-0001', guid: '18446744073709551615' })).toEqual({ snapshot: 'drover-20261207T120000000Z-0001', guid: '18446744073709551615' });
  });

  it("reads an older receiver's null, and anything malformed, as not said (the sender then lists)", () => {
    for (const value of [null, undefined, 'ready', {}, { snapshot: 'drover-a' }, { snapshot: 'drover-a', guid: 123 }, { snapshot: 'drover-a', guid: '12a' }, { snapshot: '', guid: '1' }]) {
      expect(receivedOf(value), JSON.stringify(value)).toBeNull();
    }
  });
});
