import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ControlEndpoints, parseControlEndpoints } from './control-endpoints.ts';
import { isDroverError } from './errors.ts';

describe('control endpoints', () => {
  it('reads one URL, a comma-separated list or an array as origins, in order, each once', () => {
    expect(parseControlEndpoints('https://127.0.0.1:4523/')).toEqual(['https://127.0.0.1:4523']);
    expect(parseControlEndpoints('https://a:4523, https://b:4523,https://a:4523')).toEqual(['https://a:4523', 'https://b:4523']);
    expect(parseControlEndpoints(['http://127.0.0.1:1', 'https://c:4523'])).toEqual(['http://127.0.0.1:1', 'https://c:4523']);
  });

  it('names every bad endpoint by its position, all at once', () => {
    const err = (() => {
      try {
        parseControlEndpoints('https://a:4523,ftp://b,https://c:4523/v1?x=1,nonsense', '--control');
      } catch (e) {
        return e;
      }
    })();
    expect(isDroverError(err, 'DROVER_CONFIG_INVALID')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('--control[1]: "ftp://b" must be an https://');
    expect(message).toContain('--control[2]: "https://c:4523/v1?x=1" must be scheme://host:port only');
    expect(message).toContain('--control[3]: "nonsense" is not a URL');
    expect(message).not.toContain('[0]');
  });

  it('refuses an empty list', () => {
    expect(() => parseControlEndpoints(' , ')).toThrow(/names no control service/);
  });

  it('gives configuration files the same rules, with the bad index as the path', () => {
    const schema = z.object({ control: ControlEndpoints });
    expect(schema.parse({ control: ['https://a:4523', 'https://b:4523'] }).control).toEqual(['https://a:4523', 'https://b:4523']);
    const bad = schema.safeParse({ control: ['https://a:4523', 'https://user:pw@b:4523'] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['control.1: "https://user:pw@b:4523" must not carry credentials']);
    expect(schema.safeParse({ control: [] }).success).toBe(false);
  });
});
