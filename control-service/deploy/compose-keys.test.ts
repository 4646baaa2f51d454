import { describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { parseDeployment } from './index.ts';
import { splitShellWords } from './shell-words.ts';
import { parseDuration, parseSize } from '#common/units.ts';

// One service, one key at a time: what each Compose key becomes, and how a bad one is named.
function service(body: string, extra = '') {
  const text = `services:\n  app:\n    image: busybox\n${body}${extra}`;
  return parseDeployment({
    project: 'p',
    compose: { file: 'c.yml', text },
    topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' },
    nodes: [],
  }).applications[0]!;
}
function refusal(body: string, extra = ''): string {
  try {
    service(body, extra);
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('Compose keys', () => {
  it('splits a command string into words without a shell', () => {
    expect(service(`    command: sh -c "echo \\"hi\\" > /x; rm -rf $$HOME" 'a b'\n`).command_line).toEqual([
      'sh',
      '-c',
      'echo "hi" > /x; rm -rf $HOME',
      'a b',
    ]);
    expect(refusal(`    command: echo "open\n`)).toBe('c.yml:4:5: service "app": key "command": cannot split "echo "open" into words: unterminated double quote');
  });

  it('overrides the image command with an empty one when only an entrypoint is given, as Compose does', () => {
    expect(service('    entrypoint: /bin/init --verbose\n')).toMatchObject({ entrypoint: ['/bin/init', '--verbose'], command_line: [] });
  });

  it('reads environment lists and maps, and refuses a variable without a value', () => {
    expect(service('    environment: ["A=1", "B=x=y", "C="]\n').environment).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(service('    environment: { A: 1, B: true, C: "" }\n').environment).toEqual({ A: '1', B: 'true', C: '' });
    expect(refusal('    environment: { HOME: }\n')).toBe(
      'c.yml:4:20: service "app": key "environment.HOME": "HOME" has no value; deploy with the drover CLI, which takes it from its environment, or write "HOME=value"',
    );
  });

  it('reads ports in the short syntax, with a protocol and with ranges', () => {
    expect(service('    ports: ["8080:80/tcp", "9000-9001:7000-7001"]\n').ports).toEqual([
      { internal: 80, external: 8080 },
      { internal: 7000, external: 9000 },
      { internal: 7001, external: 9001 },
    ]);
  });

  it('reads UDP ports and host addresses in both syntaxes; 0.0.0.0 is the node\'s own address', () => {
    expect(service('    ports: ["53:53/udp", "53:53", "127.0.0.1:8080:80", "0.0.0.0:9090:90", { target: 3478, published: "3478", protocol: udp, host_ip: 127.0.0.2 }]\n').ports).toEqual([
      { internal: 53, external: 53, protocol: 'udp' },
      { internal: 53, external: 53 },
      { internal: 80, external: 8080, host_ip: '127.0.0.1' },
      { internal: 90, external: 9090 },
      { internal: 3478, external: 3478, protocol: 'udp', host_ip: '127.0.0.2' },
    ]);
  });

  it('refuses SCTP, container-only ports, IPv6 and bad host addresses and a duplicate published port', () => {
    expect(refusal('    ports: ["9:9/sctp"]\n')).toBe('c.yml:4:13: service "app": key "ports[0]": "9:9/sctp": drover relays TCP and UDP, not SCTP');
    expect(refusal('    ports: ["80"]\n')).toBe(
      'c.yml:4:13: service "app": key "ports[0]": "80" needs a published port ("8080:80"): drover publishes each port at the same number on every node; to reach it from the project\'s services by name only, list it under "expose:"',
    );
    expect(refusal('    ports: ["127.0.0.1::80"]\n')).toMatch(/"127\.0\.0\.1::80" needs a published port/);
    expect(refusal('    ports: ["[::1]:8080:80"]\n')).toMatch(/an IPv6 host address is not supported/);
    expect(refusal('    ports: [{ target: 80, published: "8080", host_ip: localhost }]\n')).toMatch(/^c\.yml:4:46: service "app": key "ports\[0\]\.host_ip": "localhost" is not an IPv4 address/);
    expect(refusal('    ports: ["8080:80", "8080:81"]\n')).toBe('c.yml:4:5: service "app": key "ports": published port 8080 appears more than once');
    expect(refusal('    ports: ["53:53/udp", "53:54/udp"]\n')).toBe('c.yml:4:5: service "app": key "ports": published port 53/udp appears more than once');
  });

  it('reads expose and networks with aliases; a network must be declared', () => {
    const app = service('    expose: ["5432", 6000-6001, "53/udp"]\n    networks: { back: { aliases: [database] }, default: null }\n', 'networks: { back: { driver: bridge } }\n');
    expect(app.expose).toEqual([{ internal: 5432 }, { internal: 6000 }, { internal: 6001 }, { internal: 53, protocol: 'udp' }]);
    expect(app.networks).toEqual({ back: ['database'], default: [] });
    expect(refusal('    networks: [back]\n')).toBe('c.yml:4:16: service "app": key "networks[0]": network "back" is not declared under the top-level "networks:"');
    expect(refusal('    networks: { default: { ipv4_address: 10.0.0.5 } }\n')).toMatch(/unsupported key "networks\.default\.ipv4_address": drover gives each service its address itself/);
  });

  it('names an unknown key inside a long port by its full path', () => {
    expect(refusal('    ports: [{ target: 80, published: 8080, mode: host, extra: 1 }]\n')).toBe('c.yml:4:56: service "app": unsupported key "ports[0].extra"');
  });

  it('maps restart policies: no, always, unless-stopped, on-failure[:N]', () => {
    expect(service('    restart: "no"\n').restart_policy).toEqual({ name: 'never' });
    expect(service('    restart: unless-stopped\n').restart_policy).toEqual({ name: 'always' });
    expect(service('    restart: on-failure\n').restart_policy).toEqual({ name: 'on-failure' });
    expect(service('    restart: on-failure:3\n').restart_policy).toEqual({ name: 'on-failure', maximum_retry_count: 3 });
    expect(refusal('    restart: sometimes\n')).toBe(
      'c.yml:4:5: service "app": key "restart": "sometimes" is not a restart policy (no, always, on-failure[:N], unless-stopped)',
    );
  });

  it('reads a tcp x-drover-healthcheck that sends and expects, a double-quoted "\\r\\n" being CR LF', () => {
    const check = '    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }\n';
    expect(service(check).health_check).toEqual({
      type: 'tcp',
      port: 6379,
      send: 'PING\r\n',
      expect: '+PONG',
      initial_delay_seconds: 0,
      period_seconds: 1,
      timeout_seconds: 2,
      failure_threshold: 3,
    });
    expect(service('    x-drover-healthcheck: { type: tcp, port: 25, expect: 220 ESMTP }\n').health_check).toMatchObject({ expect: '220 ESMTP' });
    expect(service('    x-drover-healthcheck: { type: tcp, port: 6379 }\n').health_check).not.toHaveProperty('send');
  });

  it('refuses a tcp check whose send or expect is not a string, empty or too long, and send or expect anywhere else', () => {
    const tcp = (extra: string) => `    x-drover-healthcheck: { type: tcp, port: 6379, ${extra} }\n`;
    expect(refusal(tcp('expect: 1'))).toBe('c.yml:4:52: service "app": key "x-drover-healthcheck.expect": must be a string (quote it)');
    expect(refusal(tcp('expect: ""'))).toBe('c.yml:4:52: service "app": key "x-drover-healthcheck.expect": must not be empty');
    expect(refusal(tcp(`send: ${'x'.repeat(1025)}`))).toBe('c.yml:4:52: service "app": key "x-drover-healthcheck.send": must be at most 1024 characters');
    expect(service(tcp(`send: ${'x'.repeat(1024)}`)).health_check).toMatchObject({ send: 'x'.repeat(1024) });
    expect(refusal('    x-drover-healthcheck: { type: http, port: 80, expect: OK }\n')).toBe(
      'c.yml:4:51: service "app": unsupported key "x-drover-healthcheck.expect": only a tcp check expects (x-drover-healthcheck: { type: tcp, port, send, expect })',
    );
    expect(refusal('    healthcheck: { test: ["CMD", "true"], send: PING }\n')).toMatch(/^c\.yml:4:43: service "app": unsupported key "healthcheck\.send": only a tcp check sends/);
  });

  it('treats healthcheck NONE and disable as no health check, and refuses start_interval', () => {
    expect(service('    healthcheck: { test: ["NONE"] }\n')).not.toHaveProperty('health_check');
    expect(service('    healthcheck: { disable: true }\n')).not.toHaveProperty('health_check');
    expect(refusal('    healthcheck: { test: ["CMD", "true"], start_interval: 1s }\n')).toBe(
      'c.yml:4:43: service "app": unsupported key "healthcheck.start_interval": needs Docker API 1.44; Docker 20.10 has no start interval (use a short "interval")',
    );
  });

  it("names a health check's bad interval, timeout and retries all in one refusal", () => {
    expect(refusal('    healthcheck:\n      test: ["CMD", "true"]\n      interval: 10 seconds\n      timeout: 0s\n      retries: 0\n').split('\n')).toEqual([
      'c.yml: 3 problems',
      '  c.yml:6:7: service "app": key "healthcheck.interval": "10 seconds" is not a duration ("10s", "1m30s", "500ms")',
      '  c.yml:7:7: service "app": key "healthcheck.timeout": "0s" must be between 0.1s and 1h',
      '  c.yml:8:7: service "app": key "healthcheck.retries": must be a whole number from 1 to 100',
    ]);
    expect(refusal('    x-drover-healthcheck: { type: tcp, port: 80, interval: 2h, start_period: soon }\n').split('\n')).toEqual([
      'c.yml: 2 problems',
      '  c.yml:4:50: service "app": key "x-drover-healthcheck.interval": "2h" must be between 0.1s and 1h',
      '  c.yml:4:64: service "app": key "x-drover-healthcheck.start_period": "soon" is not a duration ("10s", "1m30s", "500ms")',
    ]);
  });

  it('suggests the key a misspelt one most likely meant, at any depth, and nothing when none is close', () => {
    expect(refusal('    enviroment: { A: "1" }\n')).toBe('c.yml:4:5: service "app": unsupported key "enviroment": did you mean "environment"?');
    expect(refusal('    port: ["80:80"]\n')).toBe('c.yml:4:5: service "app": unsupported key "port": did you mean "ports"?');
    expect(refusal('    healthCheck: { test: ["CMD", "true"] }\n')).toBe('c.yml:4:5: service "app": unsupported key "healthCheck": did you mean "healthcheck"?');
    expect(refusal('    deploy: { replica: 2 }\n')).toBe('c.yml:4:15: service "app": unsupported key "deploy.replica": did you mean "replicas"?');
    expect(refusal('    x-drover-healthcheck: { type: tcp, port: 80, exepct: ok }\n')).toBe(
      'c.yml:4:50: service "app": unsupported key "x-drover-healthcheck.exepct": did you mean "expect"?',
    );
    expect(refusal('    frobnicate: true\n')).toBe('c.yml:4:5: service "app": unsupported key "frobnicate"');
    expect(refusal('', 'volume:\n  data: {}\n')).toBe('c.yml:4:1: unsupported top-level key "volume": did you mean "volumes"?');
  });

  it('refuses constraints on attributes drover nodes do not have', () => {
    expect(refusal('    deploy: { placement: { constraints: ["node.role == manager"] } }\n')).toBe(
      'c.yml:4:42: service "app": key "deploy.placement.constraints[0]": "node.role == manager": drover nodes have no "node.role"; use node.labels.<name>, node.host or node.uuid',
    );
    expect(refusal('    deploy: { placement: { constraints: ["node.labels.disk = ssd"] } }\n')).toMatch(/is not a constraint/);
  });

  it('refuses a variable, and reads $$ as a literal dollar', () => {
    expect(service('    environment: { P: "a$$b" }\n').environment).toEqual({ P: 'a$b' });
    expect(refusal('    environment: { P: "${SECRET}" }\n')).toBe(
      'c.yml:4:20: service "app": key "environment.P": "${SECRET}" uses a variable; the drover CLI fills variables in ("drover deploy"); without it write the value (or "$$" for a literal "$")',
    );
  });

  it('refuses reserved labels, unknown service extensions and a link to a missing service', () => {
    expect(refusal('    labels: ["com.docker.compose.project=x"]\n')).toMatch(/labels under com\.docker\.compose\. are reserved$/);
    expect(refusal('    x-drover-healtcheck: {}\n')).toBe('c.yml:4:5: service "app": unsupported key "x-drover-healtcheck": did you mean "x-drover-healthcheck"?');
    expect(refusal('    links: [nowhere]\n')).toBe('c.yml:4:13: service "app": key "links[0]": service "nowhere" is not in this file');
    expect(service('    depends_on: { nowhere: { required: false } }\n').links).toEqual([]);
  });

  it('refuses unsupported top-level keys and files of no known format', () => {
    expect(refusal('', 'include: [other.yml]\n')).toBe('c.yml:4:1: unsupported top-level key "include": write the services into this file');
    expect(() =>
      parseDeployment({ project: 'p', compose: { file: 'c.yml', text: 'hello: world\n' }, topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' }, nodes: [] }),
    ).toThrow(/^c\.yml:1:1: not an application file drover reads/);
  });
});

describe('units', () => {
  it('reads sizes in bytes and binary units', () => {
    expect([parseSize('500M'), parseSize('2.5G'), parseSize('64mb'), parseSize(1048576), parseSize('1k'), parseSize('x')]).toEqual([
      500 * 1024 ** 2,
      2.5 * 1024 ** 3,
      64 * 1024 ** 2,
      1048576,
      1024,
      null,
    ]);
  });
  it('reads Compose durations', () => {
    expect([parseDuration('10s'), parseDuration('1m30s'), parseDuration('500ms'), parseDuration('1h'), parseDuration('5'), parseDuration('1x')]).toEqual([
      10,
      90,
      0.5,
      3600,
      5,
      null,
    ]);
  });
  it('splits shell words with quotes and escapes, and reports an unterminated quote', () => {
    expect(splitShellWords(`a "b c" 'd "e"' f\\ g ""`)).toEqual(['a', 'b c', 'd "e"', 'f g', '']);
    expect(splitShellWords(`'open`)).toEqual({ error: 'unterminated single quote' });
  });
});
