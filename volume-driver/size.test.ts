import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from './size.ts';

describe('size option', () => {
  it('reads bytes and binary units the way docker volume create -o size= is written', () => {
    expect(parseSize('1G')).toBe(1024 ** 3);
    expect(parseSize('1g')).toBe(1024 ** 3);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('512M')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('67108864')).toBe(67108864);
    expect(parseSize('2T')).toBe(2 * 1024 ** 4);
  });

  it('rounds up to a multiple of 1024, as the model requires', () => {
    expect(parseSize('67108865')).toBe(67108864 + 1024);
  });

  it('refuses what is not a size, or below 64M, quoting the value', () => {
    expect(() => parseSize('big')).toThrow('option size="big" is not a size');
    expect(() => parseSize('1P')).toThrow('option size="1P" is not a size');
    expect(() => parseSize('10M')).toThrow('option size="10M" is below the minimum of 64M');
  });

  it('prints sizes back in the same units', () => {
    expect(formatSize(1024 ** 3)).toBe('1G');
    expect(formatSize(12 * 1024 ** 2)).toBe('12M');
    expect(formatSize(1.5 * 1024 ** 2)).toBe('1.5M');
    expect(formatSize(10)).toBe('10B');
  });
});
