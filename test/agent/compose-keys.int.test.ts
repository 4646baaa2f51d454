import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Node } from '#common/model.ts';
import { parseDeployment } from '../../control-service/deploy/index.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { containerSpec } from '../../convergence-agent/plan/container-spec.ts';
import { describeWith } from '../support/require.ts';

// Compose's container keys, from a Compose file through the parser and the container spec
// to a container on the machine's own dockerd: what Docker was told, and what the
// container then does (a read-only root, a read-only volume, the stop signal and grace).
describeWith(['dockerd'], 'Compose container keys on a real dockerd', () => {
  const runtime = new DockerRuntime({ socketPath: '/var/run/docker.sock', pullTimeoutMs: 5_000 });
  const nodeUuid = randomUUID();
  const node: Node = { uuid: nodeUuid, host: '127.0.0.1', labels: {}, transfer: {} };
  const suffix = nodeUuid.slice(0, 8);
  let dataDir: string;

  const docker = (...args: string[]) => execa('docker', args, { timeout: 60_000, reject: false });
  const inspect = async (name: string) => JSON.parse((await docker('inspect', name)).stdout)[0];

  /** Parses `services` as a Compose file and starts the named application's container. */
  async function start(compose: string, app: string): Promise<string> {
    const parsed = parseDeployment({
      project: 'keys',
      compose: { file: 'compose.yml', text: compose },
      topology: { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' },
      nodes: [node],
    });
    const application = parsed.applications.find((a) => a.name === app)!;
    const mountpoints = new Map(parsed.datasets.map((d) => [d.dataset_id, dataDir]));
    const spec = containerSpec(application, { nodeUuid, address: '127.0.0.1', generation: 1, mountpoints });
    await runtime.createAndStart(spec);
    const c = (await runtime.listContainers(nodeUuid)).find((x) => x.name === spec.name)!;
    return c.id;
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drover-compose-keys-'));
    await writeFile(join(dataDir, 'seed'), 'from the dataset\n', { mode: 0o644 });
    await chmod(dataDir, 0o755); // readable by the container's user, 65534
  });
  afterAll(async () => {
    const ids = (await docker('ps', '-aq', '--filter', `label=drover.node=${nodeUuid}`)).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await docker('rm', '-f', ...ids);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates the container with the hostname, user, working dir, capabilities, read-only root, tmpfs, init, shm, ulimits, log options and a read-only volume', async () => {
    const name = `keys-${suffix}`;
    const id = await start(
      `services:
  ${name}:
    image: drover/busybox:latest
    command: ["sleep", "600"]
    container_name: my-keys
    hostname: keys-host
    user: "65534:65534"
    working_dir: /tmp
    cap_add: [NET_ADMIN]
    cap_drop: [CAP_MKNOD]
    read_only: true
    tmpfs: ["/run:size=1m", /tmp]
    init: true
    shm_size: 8m
    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }
    logging: { driver: json-file, options: { max-size: 1m, max-file: 2 } }
    labels: { com.example.tier: backend }
    volumes: ["seed:/data:ro"]
volumes:
  seed: {}
`,
      name,
    );
    const info = await inspect(id);
    expect(info.Config).toMatchObject({ Hostname: 'keys-host', User: '65534:65534', WorkingDir: '/tmp' });
    expect(info.Config.Labels).toMatchObject({ 'drover.container-name': 'my-keys', 'com.example.tier': 'backend' });
    expect(info.HostConfig).toMatchObject({
      CapAdd: ['NET_ADMIN'],
      CapDrop: ['MKNOD'],
      ReadonlyRootfs: true,
      Tmpfs: { '/run': 'size=1m', '/tmp': '' },
      Init: true,
      ShmSize: 8 * 1024 * 1024,
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 2048 },
        { Name: 'nproc', Soft: 512, Hard: 512 },
      ],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '2' } },
    });
    expect(info.Mounts.find((m: { Destination: string }) => m.Destination === '/data')).toMatchObject({ Source: dataDir, RW: false });

    const sh = (script: string) => docker('exec', id, 'sh', '-c', script);
    // The container's own processes' limits (its first process's): a `docker exec`'d shell gets
    // the hard limit as its soft one too when dockerd's own soft limit is above it (runc), so
    // `ulimit -n` in an exec says more about the host than about the container.
    expect((await sh("id -u; hostname; pwd; awk '/^Max open files/ {print $4, $5}' /proc/1/limits")).stdout.split('\n')).toEqual(['65534', 'keys-host', '/tmp', '1024 2048']);
    expect((await sh('touch /root-file')).exitCode).not.toBe(0); // read-only root
    expect((await sh('touch /run/x && touch /tmp/y')).exitCode).toBe(0); // the tmpfs mounts are writable
    expect((await sh('cat /data/seed')).stdout).toBe('from the dataset');
    expect((await sh('touch /data/new')).exitCode).not.toBe(0); // the volume is read-only
    expect((await docker('exec', id, 'cat', '/proc/1/comm')).stdout).toBe('docker-init');
  });

  it('gives the container the name servers, search domains, resolver options, extra hosts and sysctls of the file', async () => {
    const name = `resolver-${suffix}`;
    const id = await start(
      `services:
  ${name}:
    image: drover/busybox:latest
    command: ["sleep", "600"]
    dns: [10.11.12.13, 10.11.12.14]
    dns_search: corp.internal
    dns_opt: ["ndots:2"]
    extra_hosts: { db.internal: 10.20.30.40, gw: host-gateway }
    sysctls: { net.core.somaxconn: 1024 }
    volumes: ["/etc/localtime:/etc/localtime:ro"]
`,
      name,
    );
    const info = await inspect(id);
    expect(info.HostConfig).toMatchObject({
      Dns: ['10.11.12.13', '10.11.12.14'],
      DnsSearch: ['corp.internal'],
      DnsOptions: ['ndots:2'],
      Sysctls: { 'net.core.somaxconn': '1024' },
    });
    // What the application sees: its resolver configuration, /etc/hosts and the kernel setting.
    const cat = async (file: string) => (await docker('exec', id, 'cat', file)).stdout;
    const resolv = await cat('/etc/resolv.conf');
    expect(resolv).toMatch(/^nameserver 10\.11\.12\.13$/m);
    expect(resolv).toMatch(/^nameserver 10\.11\.12\.14$/m);
    expect(resolv).toMatch(/^search corp\.internal$/m);
    expect(resolv).toMatch(/^options ndots:2$/m);
    const hosts = await cat('/etc/hosts');
    expect(hosts).toMatch(/^10\.20\.30\.40\s+db\.internal$/m);
    expect(hosts).toMatch(/^\d+\.\d+\.\d+\.\d+\s+gw$/m); // host-gateway: the bridge's gateway address
    expect((await cat('/proc/sys/net/core/somaxconn')).trim()).toBe('1024');
    // The node's own time zone file, read-only.
    expect(info.Mounts.find((m: { Destination: string }) => m.Destination === '/etc/localtime')).toMatchObject({ Source: '/etc/localtime', RW: false });
    expect((await docker('exec', id, 'sh', '-c', 'cmp /etc/localtime /etc/localtime && touch /etc/localtime')).exitCode).not.toBe(0);
  });

  it('runs the container with the tty, security options, groups, OOM score, CPU set, IPC mode and the memory and process limits of the file', async () => {
    const name = `proc-${suffix}`;
    const id = await start(
      `services:
  ${name}:
    image: drover/busybox:latest
    command: ["sleep", "600"]
    tty: true
    stdin_open: true
    security_opt: ["no-new-privileges:true"]
    domainname: example.internal
    group_add: ["1234"]
    oom_score_adj: 321
    cpuset: "0"
    ipc: shareable
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    pids_limit: 50
`,
      name,
    );
    const info = await inspect(id);
    expect(info.Config).toMatchObject({ Tty: true, OpenStdin: true, Domainname: 'example.internal' });
    expect(info.HostConfig).toMatchObject({
      SecurityOpt: ['no-new-privileges:true'],
      GroupAdd: ['1234'],
      OomScoreAdj: 321,
      CpusetCpus: '0',
      IpcMode: 'shareable',
      Memory: 64 * 1024 ** 2,
      MemorySwap: 128 * 1024 ** 2,
      MemoryReservation: 32 * 1024 ** 2,
      PidsLimit: 50,
    });
    // As the process sees it: its groups, its OOM score, the CPUs it may use, no new privileges.
    const sh = async (script: string) => (await docker('exec', id, 'sh', '-c', script)).stdout.trim();
    expect((await sh('id -G')).split(' ')).toContain('1234');
    expect(await sh('cat /proc/1/oom_score_adj')).toBe('321');
    expect(await sh("grep '^Cpus_allowed_list' /proc/1/status")).toMatch(/:\s*0$/);
    expect(await sh("grep '^NoNewPrivs' /proc/1/status")).toMatch(/:\s*1$/);
  });

  it('stops with the stop signal, and kills after the container\'s own grace period instead of the agent\'s', async () => {
    // Takes SIGINT to leave; ignores SIGTERM, the default that a stop without stop_signal sends.
    const script = "trap 'echo got INT; exit 0' INT; trap '' TERM; echo ready; while :; do sleep 0.1; done";
    const polite = `polite-${suffix}`;
    const stubborn = `stubborn-${suffix}`;
    const file = `services:
  ${polite}:
    image: drover/busybox:latest
    entrypoint: ["sh", "-c", ${JSON.stringify(script)}]
    stop_signal: INT
  ${stubborn}:
    image: drover/busybox:latest
    entrypoint: ["sh", "-c", ${JSON.stringify(script)}]
    stop_grace_period: 1s
`;
    const politeId = await start(file, polite);
    const stubbornId = await start(file, stubborn);
    for (const id of [politeId, stubbornId]) {
      await expect.poll(async () => (await docker('logs', id)).stdout, { timeout: 10_000 }).toContain('ready');
    }

    // The agent's default grace here is 30 s: either stop taking that long would be a failure.
    let t0 = Date.now();
    await runtime.stop(politeId, 30);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await docker('logs', politeId)).stdout).toContain('got INT');
    expect((await inspect(politeId)).State.ExitCode).toBe(0);

    t0 = Date.now();
    await runtime.stop(stubbornId, 30);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(10_000);
    expect((await inspect(stubbornId)).State.ExitCode).toBe(137); // SIGKILL after the grace period

    // The cutover's stop (stopProcesses) sends the same signal and honours the same grace.
    await docker('start', politeId);
    await expect.poll(async () => (await docker('logs', politeId)).stdout.split('ready').length, { timeout: 10_000 }).toBe(3);
    t0 = Date.now();
    await runtime.stopProcesses(politeId, 30);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect.poll(async () => (await docker('logs', politeId)).stdout.split('got INT').length, { timeout: 10_000 }).toBe(3);
    await docker('start', stubbornId);
    await expect.poll(async () => (await inspect(stubbornId)).State.Running, { timeout: 10_000 }).toBe(true);
    t0 = Date.now();
    await runtime.stopProcesses(stubbornId, 30);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 60_000);
});
