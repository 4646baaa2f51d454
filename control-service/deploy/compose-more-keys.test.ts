import { describe, expect, it } from 'vitest';
import { isDroverError, type DroverError } from '#common/errors.ts';
import type { Desired } from '#common/model.ts';
import { parseDeployment, planDeploy } from './index.ts';

// The Compose keys with a Docker meaning, extends and profiles, the CLI's trailer, and a
// refusal that lists every problem at once.
const TRAILER = 'x-drover-cli: {"interpolated":true,"profiles":[],"env_files":{}}\n';
function parse(text: string) {
  return parseDeployment({ project: 'p', compose: { file: 'c.yml', text }, topology: { file: 't.yml', text: 'version: 1\nnodes: {}\n' }, nodes: [] });
}
function refused(text: string): DroverError {
  try {
    parse(text);
  } catch (err) {
    if (isDroverError(err, 'DROVER_BAD_CONFIG')) return err;
    throw err;
  }
  throw new Error('accepted');
}
const one = (body: string) => parse(`services:\n  app:\n    image: busybox\n${body}`).applications[0]!;

describe('Compose container keys', () => {
  it('reads each key into the application, as Docker will be told', () => {
    const app = one(
      [
        '    container_name: my-app',
        '    hostname: app-1',
        '    user: 1000',
        '    working_dir: /srv',
        '    stop_signal: quit',
        '    stop_grace_period: 1m30s',
        '    cap_add: [cap_net_admin]',
        '    cap_drop: [ALL]',
        '    read_only: true',
        '    tmpfs: /run',
        '    init: true',
        '    shm_size: 64M',
        '    ulimits: { nproc: 100, nofile: { soft: 10, hard: 20 } }',
        '    logging: { driver: local, options: { max-size: 1m, compress: true } }',
        '    volumes: ["data:/data:ro", { type: tmpfs, target: /cache, tmpfs: { size: 1048576, mode: 1777 } }]',
        'volumes: { data: {} }',
        '',
      ].join('\n'),
    );
    expect(app).toMatchObject({
      container_name: 'my-app',
      hostname: 'app-1',
      user: '1000',
      working_dir: '/srv',
      stop_signal: 'SIGQUIT',
      stop_grace_period_seconds: 90,
      cap_add: ['NET_ADMIN'],
      cap_drop: ['ALL'],
      read_only: true,
      tmpfs: { '/run': '', '/cache': 'size=1048576,mode=3361' },
      init: true,
      shm_size: 64 * 1024 * 1024,
      ulimits: { nproc: { soft: 100, hard: 100 }, nofile: { soft: 10, hard: 20 } },
      logging: { driver: 'local', options: { 'max-size': '1m', compress: 'true' } },
      volumes: [expect.objectContaining({ mountpoint: '/data', read_only: true })],
    });
  });

  it('refuses bad values of the keys, naming each', () => {
    const err = refused(
      'services:\n  app:\n    image: busybox\n    working_dir: srv\n    stop_signal: "SIG KILL"\n    ulimits: { nofile: { soft: 20, hard: 10 } }\n    tmpfs: [run]\n    hostname: "a_b"\n',
    );
    expect(err.message.split('\n')).toEqual([
      'c.yml: 5 problems',
      '  c.yml:4:5: service "app": key "working_dir": "srv" must be an absolute path in the container',
      '  c.yml:5:5: service "app": key "stop_signal": "SIG KILL" is not a signal ("SIGINT", "SIGQUIT", "9")',
      '  c.yml:6:16: service "app": key "ulimits.nofile": soft limit 20 is above the hard limit 10',
      '  c.yml:7:13: service "app": key "tmpfs[0]": "run" must be an absolute path in the container ("/run" or "/run:size=64m")',
      '  c.yml:8:5: service "app": key "hostname": "a_b" is not a host name (letters, digits, "." or "-")',
    ]);
  });

  it('reads how the container resolves names and tunes its namespaces: dns, dns_search, dns_opt, extra_hosts in all three spellings, sysctls', () => {
    const list = one(
      [
        '    dns: 10.0.0.53',
        '    dns_search: [corp.internal, example.internal]',
        '    dns_opt: ["ndots:2", use-vc]',
        '    extra_hosts: ["host.docker.internal:host-gateway", "db=10.0.0.7", "v6:fd00::1"]',
        '    sysctls: ["net.core.somaxconn=1024", "kernel.shmmax=68719476736"]',
        '',
      ].join('\n'),
    );
    expect(list).toMatchObject({
      dns: ['10.0.0.53'],
      dns_search: ['corp.internal', 'example.internal'],
      dns_opt: ['ndots:2', 'use-vc'],
      extra_hosts: ['host.docker.internal:host-gateway', 'db:10.0.0.7', 'v6:fd00::1'],
      sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '68719476736' },
    });
    const mapping = one('    extra_hosts: { db: 10.0.0.7, lb: ["10.0.0.8", "10.0.0.9"] }\n    sysctls: { net.ipv4.ip_forward: 1 }\n');
    expect(mapping).toMatchObject({ extra_hosts: ['db:10.0.0.7', 'lb:10.0.0.8', 'lb:10.0.0.9'], sysctls: { 'net.ipv4.ip_forward': '1' } });
  });

  it('refuses a name server that is not an address, a host without one, and a sysctl of the whole host, naming each', () => {
    const err = refused(
      'services:\n  app:\n    image: busybox\n    dns: [dns.example]\n    extra_hosts: ["db"]\n    sysctls: { vm.swappiness: 10 }\n',
    );
    expect(err.message.split('\n')).toEqual([
      'c.yml: 3 problems',
      '  c.yml:4:11: service "app": key "dns[0]": "dns.example" is not an IP address ("1.1.1.1", "fd00::53")',
      '  c.yml:5:19: service "app": key "extra_hosts[0]": "" is not an IP address or "host-gateway" (write "db:10.0.0.5")',
      '  c.yml:6:16: service "app": key "sysctls[\'vm.swappiness\']": "vm.swappiness" cannot be set for one container: only net.*, fs.mqueue.* and the IPC kernel.* settings (kernel.shmmax, kernel.sem…) belong to its own namespaces',
    ]);
  });

  it('reads deploy.restart_policy as Compose does, refuses what Docker cannot do, and a restart that says otherwise', () => {
    expect(one('    deploy: { restart_policy: { condition: on-failure, max_attempts: 3 } }\n').restart_policy).toEqual({ name: 'on-failure', maximum_retry_count: 3 });
    expect(one('    deploy: { restart_policy: { condition: none } }\n').restart_policy).toEqual({ name: 'never' });
    expect(one('    restart: always\n    deploy: { restart_policy: { condition: any } }\n').restart_policy).toEqual({ name: 'always' });
    const err = refused('services:\n  app:\n    image: busybox\n    restart: "no"\n    deploy:\n      restart_policy: { condition: any, delay: 5s }\n');
    expect(err.message.split('\n')).toEqual([
      'c.yml: 2 problems',
      '  c.yml:6:7: service "app": key "deploy.restart_policy": says always but "restart: no" says never: give one',
      '  c.yml:6:41: service "app": key "deploy.restart_policy.delay": not supported: Docker restarts a failed container at once, with its own growing back-off; drop the key',
    ]);
  });

  it('reads the older "scale: N" as deploy.replicas, and refuses both when they disagree', () => {
    expect(one('    scale: 3\n')).toMatchObject({ instances: 3 });
    const err = refused('services:\n  app:\n    image: busybox\n    scale: 2\n    deploy: { replicas: 3 }\n');
    expect(err.message).toContain('c.yml:4:5: service "app": key "scale": 2 instances here, 3 under "deploy.replicas": give the number once');
  });

  it('reads the process and resource keys people write: tty, stdin_open, security_opt, domainname, group_add, oom_score_adj, cpuset, ipc, reservations, swap, pids', () => {
    const app = one(
      [
        '    tty: true',
        '    stdin_open: true',
        '    security_opt: ["no-new-privileges:true", "apparmor=unconfined"]',
        '    domainname: example.internal',
        '    group_add: [audio, 1001]',
        '    oom_score_adj: -500',
        '    cpuset: "0-1"',
        '    ipc: shareable',
        '    mem_limit: 512m',
        '    memswap_limit: 1g',
        '    mem_swappiness: 10',
        '    deploy: { resources: { reservations: { memory: 128M }, limits: { pids: 200 } } }',
        '    x-logging-anchor: &anchor { a: b }',
        '',
      ].join('\n'),
    );
    expect(app).toMatchObject({
      tty: true,
      stdin_open: true,
      security_opt: ['no-new-privileges:true', 'apparmor:unconfined'],
      domainname: 'example.internal',
      group_add: ['audio', '1001'],
      oom_score_adj: -500,
      cpuset: '0-1',
      ipc: 'shareable',
      memory_limit: 512 * 1024 ** 2,
      memswap_limit: 1024 ** 3,
      swappiness: 10,
      mem_reservation: 128 * 1024 ** 2,
      pids_limit: 200,
    });
  });

  it('refuses what cannot follow a move or makes no sense, naming each key', () => {
    const err = refused(
      [
        'services:',
        '  app:',
        '    image: busybox',
        '    security_opt: ["seccomp:./profile.json", "bogus"]',
        '    ipc: "service:db"',
        '    memswap_limit: 1g',
        '    mem_reservation: 1k',
        '    cpuset: all',
        '    x-drover-typo: 1',
        '',
      ].join('\n'),
    );
    expect(err.message.split('\n')).toEqual([
      'c.yml: 7 problems',
      '  c.yml:4:20: service "app": key "security_opt[0]": "seccomp:./profile.json": a seccomp profile file is on the operator\'s machine, not on the node that runs the container; use "seccomp:unconfined" or Docker\'s default (no option)',
      '  c.yml:4:46: service "app": key "security_opt[1]": "bogus" is not a security option Docker takes ("no-new-privileges:true", "seccomp:unconfined", "apparmor:PROFILE", "label:type:TYPE")',
      '  c.yml:5:5: service "app": key "ipc": "service:db": another container\'s IPC namespace stays on its node when this service moves; use "private" or "shareable"',
      '  c.yml:6:5: service "app": key "memswap_limit": needs a memory limit ("mem_limit" or "deploy.resources.limits.memory")',
      '  c.yml:7:5: service "app": key "mem_reservation": "1k" is not a size of at least 1M ("256M", "1G")',
      '  c.yml:8:5: service "app": key "cpuset": "all" is not a CPU list ("0-3", "0,2")',
      '  c.yml:9:5: service "app": unsupported key "x-drover-typo"',
    ]);
  });

  it('binds the node\'s own time zone and CA certificates read-only, and still refuses other host paths and a writable one', () => {
    const app = one('    volumes: ["/etc/localtime:/etc/localtime:ro", "/usr/share/zoneinfo/Europe/Paris:/etc/localtime2:ro", { type: bind, source: /etc/ssl/certs, target: /certs, read_only: true }]\n');
    expect(app.host_binds).toEqual([
      { source: '/etc/localtime', target: '/etc/localtime' },
      { source: '/usr/share/zoneinfo/Europe/Paris', target: '/etc/localtime2' },
      { source: '/etc/ssl/certs', target: '/certs' },
    ]);
    const err = refused('services:\n  app:\n    image: busybox\n    volumes: ["/etc/timezone:/etc/timezone", "/etc/shadow:/s:ro", "/etc/ssl/certs/../../shadow:/t:ro"]\n');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe('c.yml: 3 problems');
    expect(lines[1]).toContain('key "volumes[0]": "/etc/timezone" is the node\'s own copy of a system file: mount it read-only (":ro")');
    expect(lines[2]).toContain('key "volumes[1]": "/etc/shadow": a host path stays on its host');
    expect(lines[3]).toContain('key "volumes[2]": "/etc/ssl/certs/../../shadow": a host path stays on its host');
  });

  it('reports the container_name mapping in the deploy diff', () => {
    const desired: Desired = { nodes: [], datasets: [], applications: [], leases: [], migrations: [] } as unknown as Desired;
    const { diff } = planDeploy(desired, parse('services:\n  db:\n    image: postgres\n    container_name: postgres\n'), 'p');
    expect(diff.added).toEqual(['application "db" (container_name "postgres": its container is "drover-db", labelled drover.container-name=postgres)']);
  });
});

describe('a refused file', () => {
  it('lists every problem of every service, by position, with each one\'s place in detail.problems', () => {
    const err = refused(
      [
        'services:',
        '  web:',
        '    image: nginx',
        '    expose: ["80/sctp"]',
        '    networks: [back]',
        '    ports: ["[::1]:53:53/udp", "8080:80"]',
        '  db:',
        '    image: postgres',
        '    secrets: [pw]',
        '    depends_on: { web: { condition: service_healthy } }',
        'networks: { front: { external: true } }',
        '',
      ].join('\n'),
    );
    expect(err.message.split('\n')).toEqual([
      'c.yml: 5 problems',
      '  c.yml:4:14: service "web": key "expose[0]": "80/sctp": drover relays TCP and UDP, not SCTP',
      '  c.yml:5:16: service "web": key "networks[0]": network "back" is not declared under the top-level "networks:"',
      '  c.yml:6:13: service "web": key "ports[0]": "[::1]:53:53/udp": an IPv6 host address is not supported: drover\'s nodes listen on IPv4 addresses',
      '  c.yml:9:15: service "db": key "secrets[0]": secret "pw" is not declared under the top-level "secrets:"',
      '  c.yml:11:22: unsupported key "networks.front.external": drover resolves names within one project; a network made outside it has no services drover knows — put the services in this file',
    ]);
    expect(err.detail).toMatchObject({ file: 'c.yml', line: 4, column: 14, service: 'web', key: 'expose[0]' });
    expect((err.detail.problems as unknown[])[2]).toEqual({
      file: 'c.yml',
      service: 'web',
      key: 'ports[0]',
      line: 6,
      column: 13,
      message: 'c.yml:6:13: service "web": key "ports[0]": "[::1]:53:53/udp": an IPv6 host address is not supported: drover\'s nodes listen on IPv4 addresses',
    });
  });

  it('names problems of the topology with those of the Compose file', () => {
    const err = (() => {
      try {
        parseDeployment({
          project: 'p',
          compose: { file: 'c.yml', text: 'services:\n  a:\n    image: x\n    privileged: true\n' },
          topology: { file: 't.yml', text: 'version: 1\nnodes: { "10.0.0.1": [a] }\n' },
          nodes: [],
        });
      } catch (err) {
        return err as DroverError;
      }
      throw new Error('accepted');
    })();
    expect(err.message.split('\n')).toEqual(['c.yml, t.yml: 2 problems', '  c.yml:4:5: service "a": unsupported key "privileged"', '  t.yml:2:10: No known node with address "10.0.0.1"']);
  });
});

describe('extends and profiles', () => {
  it('merges a service it extends: own keys win, mappings merge, lists add up, chains are followed', () => {
    const apps = parse(
      [
        'services:',
        '  base:',
        '    image: app:1',
        '    environment: [A=1, B=1]',
        '    ports: ["8000:8000"]',
        '    profiles: [never]',
        '  mid:',
        '    extends: base',
        '    environment: { B: 2 }',
        '    profiles: [never]',
        '  web:',
        '    extends: { service: mid }',
        '    image: app:2',
        '    ports: ["8001:8001"]',
        '',
      ].join('\n'),
    ).applications;
    expect(apps.map((a) => a.name)).toEqual(['web']);
    expect(apps[0]).toMatchObject({ image: 'app:2', environment: { A: '1', B: '2' }, ports: [{ internal: 8000, external: 8000 }, { internal: 8001, external: 8001 }] });
  });

  it('refuses a circle of extends and a link to a service whose profile is off', () => {
    expect(refused('services:\n  a:\n    extends: b\n  b:\n    extends: a\n').message.split('\n').slice(1)).toEqual([
      '  c.yml:3:5: service "a": key "extends": "a": extends goes round in a circle (a → b → a)',
      '  c.yml:5:5: service "b": key "extends": "b": extends goes round in a circle (b → a → b)',
    ]);
    expect(refused('services:\n  a:\n    image: x\n    links: [tools]\n  tools:\n    image: y\n    profiles: [debug]\n').message).toBe(
      'c.yml:4:13: service "a": key "links[0]": service "tools" is not active (its profiles are not enabled; add --profile)',
    );
  });
});

describe('the CLI trailer', () => {
  it('makes every $ literal once the CLI has interpolated, and sends env_file contents under environment', () => {
    const text = 'services:\n  a:\n    image: x\n    command: echo $HOME $$\n    env_file: [a.env, { path: b.env, required: false }]\n    environment: { B: 2 }\n';
    const trailer = 'x-drover-cli: {"interpolated":true,"profiles":[],"env_files":{"a.env":{"A":"1","B":"1"},"b.env":null}}\n';
    expect(parse(text + trailer).applications[0]).toMatchObject({ command_line: ['echo', '$HOME', '$$'], environment: { A: '1', B: '2' } });
  });

  it('refuses env_file without the CLI, and a required env file the CLI did not find', () => {
    const text = 'services:\n  a:\n    image: x\n    env_file: a.env\n';
    expect(refused(text).message).toBe('c.yml:4:5: service "a": key "env_file": "a.env" is a file on the deploying machine; deploy with the drover CLI, which reads it, or list the variables under "environment:"');
    expect(refused(`${text}x-drover-cli: {"interpolated":true,"env_files":{"a.env":null}}\n`).message).toBe(
      'c.yml:4:5: service "a": key "env_file": "a.env": no such file beside the Compose file (or write "required: false")',
    );
  });

  it('drops a bare environment name the CLI could not resolve, as Compose does', () => {
    expect(parse(`services:\n  a:\n    image: x\n    environment: [UNSET, A=1]\n${TRAILER}`).applications[0]!.environment).toEqual({ A: '1' });
  });
});

describe('a file that is not YAML', () => {
  it('is named with its place, beside the other file\'s problems', () => {
    try {
      parseDeployment({
        project: 'p',
        compose: { file: 'c.yml', text: 'services:\n  a:\n    image: x\n    privileged: true\n' },
        topology: { file: 't.yml', text: 'version: 1\nnodes: [\n' },
        nodes: [],
      });
    } catch (err) {
      expect((err as DroverError).message.split('\n')).toEqual([
        'c.yml, t.yml: 2 problems',
        '  c.yml:4:5: service "a": unsupported key "privileged"',
        expect.stringMatching(/^ {2}t\.yml:\d+:\d+: not valid YAML: /),
      ]);
      return;
    }
    throw new Error('accepted');
  });
});
