import { describe, expect, it } from 'vitest';
import { bridgeMac } from './bridge.ts';

describe('a node bridge\'s MAC address', () => {
  it('is the same for the same bridge name, differs between names, and is a locally administered unicast address', () => {
    const mac = bridgeMac('drv-t1-1');
    expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(bridgeMac('drv-t1-1')).toBe(mac);
    expect(bridgeMac('drv-t1-2')).not.toBe(mac);
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 0x01).toBe(0); // unicast
    expect(first & 0x02).toBe(2); // locally administered
  });
});
