import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { configProblems, readConfig } from './config.ts';

const TLS = ['--tls-ca', '/etc/drover/ca.crt', '--tls-cert', '/etc/drover/control.crt', '--tls-key', '/etc/drover/control.key'];

describe("the control service's listening settings (docs/DESIGN.md §23)", () => {
  it('needs a certificate by default: no process of a default install serves plain', () => {
    expect(() => readConfig([], {})).toThrow(/needs --tls-ca, --tls-cert and --tls-key/);
    expect(readConfig(TLS, {})).toMatchObject({ listen: { host: '0.0.0.0', port: 4523 }, plainHttp: false, tls: { ca: '/etc/drover/ca.crt', revoked: null } });
  });

  it('serves plain HTTP only when asked for, and only on a loopback address', () => {
    expect(readConfig(['--insecure-plain-http', '--listen', '127.0.0.1:4523'], {})).toMatchObject({ plainHttp: true, tls: null });
    expect(() => readConfig(['--insecure-plain-http'], {})).toThrow(/refused on 0.0.0.0/);
    expect(() => readConfig(['--insecure-plain-http', '--listen', '10.0.0.5:4523'], {})).toThrow(/only on a loopback address/);
    expect(() => readConfig(['--insecure-plain-http', '--listen', '127.0.0.1:1', ...TLS], {})).toThrow(/no --tls-\* flag/);
  });

  it('names the missing half of the TLS files', () => {
    let issues: string[] = [];
    try {
      readConfig(['--tls-ca', '/ca.crt'], {});
    } catch (err) {
      issues = (err as { issues: Array<{ path: string[]; message: string }> }).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    }
    expect(issues).toEqual(['tls.cert: goes with --tls-ca and --tls-key', 'tls.key: goes with --tls-ca and --tls-cert']);
  });
});

describe('the store settings (docs/DESIGN.md §28)', () => {
  const issuesOf = (argv: string[]): string[] => {
    try {
      readConfig([...TLS, ...argv], {});
    } catch (err) {
      return (err as { issues: Array<{ path: string[]; message: string }> }).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    }
    return [];
  };

  it('keeps the file store by default and takes etcd with its endpoints, TLS and leader timing', () => {
    expect(readConfig(TLS, {})).toMatchObject({ etcd: null });
    const c = readConfig([...TLS, '--store', 'etcd', '--etcd-endpoints', 'https://10.0.0.1:2379,https://10.0.0.2:2379', '--etcd-ca', '/e/ca.crt', '--etcd-cert', '/e/c.crt', '--etcd-key', '/e/c.key', '--identity', 'c1'], {});
    expect(c).toMatchObject({ etcd: { endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], tls: { ca: '/e/ca.crt' }, prefix: '/drover/', leaseTtlSeconds: 3, renewDeadlineMs: 2_000, identity: 'c1' } });
  });

  it('names every bad etcd setting at once', () => {
    expect(issuesOf(['--store', 'etcd', '--etcd-endpoints', 'ftp://x', '--etcd-ca', '/ca', '--leader-lease-ttl', '3', '--leader-renew-deadline', '4'])).toEqual([
      'etcd.endpoints.0: each must be http(s)://HOST:PORT',
      'etcd.tls.cert: goes with --etcd-ca and --etcd-key',
      'etcd.tls.key: goes with --etcd-ca and --etcd-cert',
      'leader-renew-deadline: must be shorter than --leader-lease-ttl (3 s): a leader stops acting before its lease can expire',
    ]);
    expect(issuesOf(['--etcd-endpoints', 'http://127.0.0.1:2379'])).toEqual(['etcd-endpoints: goes with --store etcd']);
    expect(issuesOf(['--store', 'consul'])).toEqual(["store: must be 'file' or 'etcd', not 'consul'"]);
  });
});

describe('a refused command line', () => {
  it('names each bad flag as it was typed, in its own unit, all at once', () => {
    let why = '';
    try {
      readConfig([...TLS, '--node-lease-ttl', '0', '--migration-stall', 'soon', '--failover-margin', '0.1', '--body-limit', '5'], {});
    } catch (err) {
      why = configProblems(err as z.ZodError);
    }
    expect(why).toBe(
      'node-lease-ttl: must be at least 1 s; failover-margin: must be at least 0.5 s; migration-stall: must be a number of seconds; body-limit: must be at least 1024 bytes',
    );
  });
});
