import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprintOfPublicKey, parseAgentConfig } from './config.ts';
import { loadOrCreateNodeUuid } from './node-identity.ts';

const minimal = `
control_url: http://127.0.0.1:4523
address: 127.0.0.11
pool: drover-n1
transport: tls
tls: { port: 4524 }
`;

describe('agent.yml', () => {
  it('fills in defaults for what may be left out', () => {
    expect(parseAgentConfig(minimal, 'agent.yml')).toEqual({
      control_url: ['http://127.0.0.1:4523'],
      state_dir: '/var/lib/drover/agent',
      address: '127.0.0.11',
      service_subnet: '10.213.0.0/16',
      pool: 'drover-n1',
      docker_socket: '/var/run/docker.sock',
      transport: 'tls',
      tls: { port: 4524 },
      labels: {},
      warm_start: { enabled: true, busybox: '/bin/busybox' },
      poll_interval_ms: 3000,
      replication_concurrency: 4,
      stop_timeout_seconds: 10,
      fence_after_ms: 6000,
      fence_stop_timeout_seconds: 2,
      lease_ttl_ms: 10000,
      logs_port: 4526,
      metrics_listen: '127.0.0.1:9524',
    });
  });

  it('names the file and every bad key in one message', () => {
    const text = `control_url: ftp://x\naddress: 300.1.1.1\npool: drover-n1\npoll_interval_ms: 5\nfrobnicate: true\n`;
    expect(() => parseAgentConfig(text, '/etc/drover/agent.yml')).toThrow(
      "/etc/drover/agent.yml: control_url: \"ftp://x\" must be an https:// (or plain loopback http://) URL; address: must be an IPv4 address; poll_interval_ms: Too small: expected number to be >=100; unknown key(s) 'frobnicate'",
    );
  });

  it('says a missing key is required, and suggests the key a misspelt one meant', () => {
    expect(() => parseAgentConfig(`control_url: http://c:1\npool: p\npoll_intervall_ms: 500\nnode_uuid: x\n`, 'a.yml')).toThrow(
      "a.yml: address: is required; unknown key(s) 'poll_intervall_ms' (did you mean 'poll_interval_ms'?), 'node_uuid'",
    );
  });

  it('requires the endpoint of the chosen transport', () => {
    expect(() => parseAgentConfig(`control_url: http://c:1\naddress: 127.0.0.1\npool: p\n`, 'a.yml')).toThrow('a.yml: ssh: is required when transport is ssh');
    expect(() => parseAgentConfig(`${minimal}ssh: { port: 22 }\n`, 'a.yml')).toThrow('a.yml: ssh: needs host_key_fingerprint or host_public_key_file');
  });

  it('refuses a file that is not YAML, or empty, with the file name', () => {
    expect(() => parseAgentConfig('a: [', 'a.yml')).toThrow(/^a\.yml: not valid YAML/);
    expect(() => parseAgentConfig('', 'a.yml')).toThrow(/^a\.yml: control_url: /);
  });

  it('computes an OpenSSH host key fingerprint as ssh-keygen -lf prints it', () => {
    const line = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOvqMdfncZimcE3pyE9ttdGGqGfROnJT2MxGdYPTPCE root@vm';
    expect(fingerprintOfPublicKey(line)).toBe('SHA256:P4nSUJzAc+qQxKnZbEBmirkZIeFgHlxY2xENLWbJEzU');
  });
});

describe('node identity', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('generates the node uuid once and keeps it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-agent-id-'));
    const file = join(dir, 'state', 'node-uuid');
    const first = await loadOrCreateNodeUuid(file);
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(await loadOrCreateNodeUuid(file)).toBe(first);
    expect((await readFile(file, 'utf8')).trim()).toBe(first);
  });

  it('refuses a node-uuid file that holds something else', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-agent-id-'));
    const file = join(dir, 'node-uuid');
    await writeFile(file, 'not-a-uuid\n');
    await expect(loadOrCreateNodeUuid(file)).rejects.toThrow(`${file}: does not hold a node uuid (found 'not-a-uuid')`);
  });
});

describe('fence_after_ms', () => {
  it('is refused when fencing could end after the earliest failover, with a margin for clock rates', () => {
    const base = 'control_url: http://127.0.0.1:4523\naddress: 127.0.0.11\npool: p\ntransport: tls\ntls: { port: 4600 }\n';
    expect(() => parseAgentConfig(`${base}fence_after_ms: 7000\n`, 'agent.yml')).toThrow(/fence_after_ms: the fence ends up to 10600 ms .* not before the earliest failover at 9975 ms/);
    expect(parseAgentConfig(`${base}fence_after_ms: 5000\n`, 'agent.yml').fence_after_ms).toBe(5000);
  });
});
