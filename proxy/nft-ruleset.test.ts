import { describe, expect, it } from 'vitest';
import { nftConntrackTimeoutProbeScript, nftDeleteScript, nftReplaceScript } from './nft-ruleset.ts';

describe('nftReplaceScript', () => {
  it('replaces only its own table, in one transaction, with a DNAT per rule for local and remote clients', () => {
    const script = nftReplaceScript('drover_proxy_1a2b3c4d', '127.0.0.11', [{ port: 8080, target: { host: '127.0.0.12', port: 32768 } }], {
      timeWaitSeconds: null,
    });
    const lines = script.split('\n');
    expect(lines.slice(0, 3)).toEqual(['table ip drover_proxy_1a2b3c4d {}', 'delete table ip drover_proxy_1a2b3c4d', 'table ip drover_proxy_1a2b3c4d {']);
    expect(script).toContain('type nat hook output priority -100; policy accept;\n    ip daddr 127.0.0.11 tcp dport 8080 dnat to 127.0.0.12:32768');
    expect(script).toContain('ip daddr 127.0.0.11 tcp dport 8080 ct mark set 0x64726f76 dnat to 127.0.0.12:32768');
    expect(script).toContain('ct mark 0x64726f76 masquerade');
    expect(script.match(/^table /gm)).toHaveLength(2);
  });

  it('gives DNATed flows a short conntrack TIME_WAIT of their own, or the host timeouts when told to', () => {
    const rule = { port: 8080, target: { host: '127.0.0.12', port: 32768 } };
    const script = nftReplaceScript('drover_proxy_1a2b3c4d', '127.0.0.11', [rule]);
    expect(script).toContain('  ct timeout drover_tcp {\n    protocol tcp; l3proto ip;\n    policy = { time_wait: 2 }\n  }');
    expect(script).toContain('ip daddr 127.0.0.11 tcp dport 8080 ct timeout set "drover_tcp" dnat to 127.0.0.12:32768');
    expect(script).toContain('tcp dport 8080 ct timeout set "drover_tcp" ct mark set 0x64726f76 dnat to 127.0.0.12:32768');
    const plain = nftReplaceScript('drover_proxy_1a2b3c4d', '127.0.0.11', [rule], { timeWaitSeconds: null });
    expect(plain).not.toContain('ct timeout');
    expect(plain).toContain('ip daddr 127.0.0.11 tcp dport 8080 dnat to 127.0.0.12:32768');
    expect(() => nftReplaceScript('drover_x', '127.0.0.1', [rule], { timeWaitSeconds: 0 })).toThrow(/TIME_WAIT/);
  });

  it('refuses names and addresses that are not what they claim, since the script is text', () => {
    expect(() => nftReplaceScript('nat', '127.0.0.1', [])).toThrow(/not a drover table/);
    expect(() => nftReplaceScript('drover_x', '127.0.0.1; flush ruleset', [])).toThrow(/not an IPv4/);
    expect(() => nftReplaceScript('drover_x', '127.0.0.1', [{ port: 80, target: { host: '1.2.3.4 }', port: 1 } }])).toThrow(/not an IPv4/);
    expect(() => nftReplaceScript('drover_x', '127.0.0.1', [{ port: 0, target: { host: '1.2.3.4', port: 1 } }])).toThrow(/not a port/);
  });

  it('probes for conntrack timeout policies inside its own table only, adding nothing that stays', () => {
    const probe = nftConntrackTimeoutProbeScript('drover_proxy_x');
    expect(probe.startsWith('table ip drover_proxy_x {}\ntable ip drover_proxy_x {\n  ct timeout drover_probe {')).toBe(true);
    expect(probe.trim().split('\n').at(-1)).toBe('delete ct timeout ip drover_proxy_x drover_probe');
    expect(() => nftConntrackTimeoutProbeScript('nat')).toThrow(/not a drover table/);
  });

  it('deletes a table that may not exist without failing', () => {
    expect(nftDeleteScript('drover_proxy_x')).toBe('table ip drover_proxy_x {}\ndelete table ip drover_proxy_x\n');
  });
});
