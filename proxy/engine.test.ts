import { describe, expect, it } from 'vitest';
import { autoEngine, createEngine } from './engine.ts';
import { relayBinary } from './tcp-native.ts';
import { loadUvBinding } from './tcp-uv.ts';

describe('the engine `auto` picks', () => {
  it('is the C relay where it is built (host-setup builds it: a CI machine without it fails here)', async () => {
    if (process.env.CI === 'true') expect(relayBinary(), 'native/build/drover-relay (make -C native)').not.toBeNull();
    const expected = loadUvBinding() === null ? 'net' : relayBinary() === null ? 'uv' : 'native';
    expect(autoEngine()).toBe(expected);
    const engine = createEngine('auto');
    try {
      expect(engine.name).toBe(expected);
    } finally {
      await engine.destroyAll();
    }
  });
});
