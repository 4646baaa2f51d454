import { describe, expect, it } from 'vitest';
import { readConfig } from './config.ts';

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
