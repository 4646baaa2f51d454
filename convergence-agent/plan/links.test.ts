import { describe, expect, it } from 'vitest';
import { linkEnvironment } from './links.ts';

describe('linkEnvironment', () => {
  it('points Docker-style and plain variables at the local proxy', () => {
    const env = linkEnvironment({ environment: {} }, [{ alias: 'db', local_port: 3306, remote_port: 13306 }], '127.0.0.11');
    expect(env).toEqual({
      DB_HOST: '127.0.0.11',
      DB_PORT: '13306',
      DB_PORT_3306_TCP: 'tcp://127.0.0.11:13306',
      DB_PORT_3306_TCP_ADDR: '127.0.0.11',
      DB_PORT_3306_TCP_PORT: '13306',
      DB_PORT_3306_TCP_PROTO: 'tcp',
    });
  });

  it('takes the plain host and port from the first link of an alias', () => {
    const env = linkEnvironment(
      { environment: {} },
      [
        { alias: 'cache', local_port: 6379, remote_port: 16379 },
        { alias: 'cache', local_port: 26379, remote_port: 26379 },
      ],
      '10.0.0.5',
    );
    expect(env.CACHE_PORT).toBe('16379');
    expect(env.CACHE_PORT_26379_TCP).toBe('tcp://10.0.0.5:26379');
    expect(env.CACHE_PORT_6379_TCP_PORT).toBe('16379');
  });

  it("leaves out names the application's own environment sets", () => {
    const env = linkEnvironment({ environment: { DB_HOST: 'db.example' } }, [{ alias: 'db', local_port: 5432, remote_port: 5432 }], '127.0.0.1');
    expect(env.DB_HOST).toBeUndefined();
    expect(env.DB_PORT).toBe('5432');
  });

  it('returns nothing for an application without links', () => {
    expect(linkEnvironment({ environment: {} }, [], '127.0.0.1')).toEqual({});
  });
});
