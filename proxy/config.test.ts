import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { loadProxyConfig, natTableName } from './config.ts';

const UUID = '1a2b3c4d-0000-4000-8000-000000000001';
const noFile = (): string => {
  throw new Error('no file expected');
};

describe('loadProxyConfig', () => {
  it('takes flags over the environment over the file, with defaults for the rest', () => {
    const config = loadProxyConfig({
      argv: ['--config', '/etc/drover/proxy.yml', '--hold-deadline-ms', '5000'],
      env: { DROVER_PROXY_LISTEN_HOST: '127.0.0.12', DROVER_PROXY_HOLD_DEADLINE_MS: '9000' },
      readFile: () => `control: http://127.0.0.1:4523\nnode_uuid: ${UUID}\nlisten_host: 127.0.0.11\nmode: kernel\n`,
    });
    expect(config).toMatchObject({ control: ['http://127.0.0.1:4523'], listen_host: '127.0.0.12', hold_deadline_ms: 5000, mode: 'kernel', engine: 'auto' });
    expect(config.connect_timeout_ms).toBe(2000);
    expect(config.workers).toBe(1);
    expect(natTableName(config)).toBe('drover_proxy_1a2b3c4d');
  });

  it('names the source and the key of every bad value', () => {
    try {
      loadProxyConfig({ argv: ['--control', 'ftp://x', '--node-uuid', UUID, '--listen-host', '127.0.0.1', '--mode', 'fast'], env: { DROVER_PROXY_BUFFER_BYTES: 'lots' }, readFile: noFile });
      expect.unreachable();
    } catch (err) {
      expect(isDroverError(err, 'DROVER_CONFIG_INVALID')).toBe(true);
      const message = (err as Error).message;
      expect(message).toContain('--control: control:');
      expect(message).toContain('--mode: mode:');
      expect(message).toContain('environment DROVER_PROXY_BUFFER_BYTES: buffer_bytes:');
    }
  });

  it('takes workers as a whole number from 1 to 64, naming the flag otherwise', () => {
    const base = ['--control', 'http://127.0.0.1:4523', '--node-uuid', UUID, '--listen-host', '127.0.0.1'];
    expect(loadProxyConfig({ argv: [...base, '--workers', '2'], env: {}, readFile: noFile }).workers).toBe(2);
    for (const bad of ['0', '65', '1.5', 'two']) {
      expect(() => loadProxyConfig({ argv: [...base, '--workers', bad], env: {}, readFile: noFile })).toThrow(/--workers: workers:/);
    }
  });

  it('takes engine auto, uv, net or native, naming the flag and the choices otherwise', () => {
    const base = ['--control', 'http://127.0.0.1:4523', '--node-uuid', UUID, '--listen-host', '127.0.0.1'];
    expect(loadProxyConfig({ argv: base, env: {}, readFile: noFile }).engine).toBe('auto');
    expect(loadProxyConfig({ argv: [...base, '--engine', 'native'], env: {}, readFile: noFile }).engine).toBe('native');
    expect(() => loadProxyConfig({ argv: [...base, '--engine', 'relay'], env: {}, readFile: noFile })).toThrow(/--engine: engine: .*"native"/);
  });

  it('rejects an unknown key in the file by name', () => {
    expect(() => loadProxyConfig({ argv: ['--config', 'p.yml'], env: {}, readFile: () => `control: http://x\nnode_uuid: ${UUID}\nlisten_host: 127.0.0.1\nlisten_port: 1\n` })).toThrow(
      /p\.yml: unknown key\(s\) 'listen_port'/,
    );
  });

  it('rejects an unknown flag', () => {
    expect(() => loadProxyConfig({ argv: ['--colour'], env: {}, readFile: noFile })).toThrow(/command line:.*colour/);
  });
});
