/**
 * `npm run bench:transfer [-- --json] [--runs N] [--size-mib M]`
 *
 * A full `zfs send` of a 512 MiB random-data dataset from node 1 to node 2 of a local
 * cluster (its own, `bt<s>`, on a subnet leased like the tests' so runs never collide),
 * interleaved, N runs each:
 *   local    `zfs send | zfs receive` on one host (the machine's limit)
 *   openssh  `zfs send | ssh -c aes128-gcm@openssh.com node2 zfs receive` (the anchor)
 *   ssh      drover's ssh transport (ssh2, persistent connection, warm remote shell)
 *   tls      drover's tls transport (mutual TLS to node 2's agent, in its own process)
 * Each run receives into an absent target (full stream) and checks the received guid.
 * This process (the sender) and the tls receiver run with drover-agent's node flags
 * (bin/drover-agent.js's first line, common/node-flags.ts): the npm script passes them,
 * and the bench refuses to run without them, as it would measure another program.
 * Times cover the stream: process start to `zfs receive` exit. Prints MiB/s medians and
 * each ratio to the local pipe; `--json` prints one JSON object.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFillSync, randomUUID } from 'node:crypto';
import { clusterDown, clusterUp, type LocalNode } from '../local-cluster/index.ts';
import { leaseSubnet } from '../test/support/cluster.ts';
import { ZfsStore } from '../convergence-agent/zfs/zfs.ts';
import { SshPeer } from '../convergence-agent/transfer/ssh-peer.ts';
import { TlsPeer } from '../convergence-agent/transfer/tls-peer.ts';
import { ensureNodeCertificate } from '../convergence-agent/transfer/tls-certs.ts';
import { startSend, streamStep } from '../convergence-agent/transfer/stream-step.ts';
import type { Peer } from '../convergence-agent/transfer/types.ts';
import { missingNodeFlags, nodeFlagsOf } from '#common/node-flags.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const runs = option('--runs', 3);
const sizeMiB = option('--size-mib', 512);
const missingFlags = missingNodeFlags(join(import.meta.dirname, '..', 'bin', 'drover-agent.js'));
if (missingFlags.length > 0) {
  process.stderr.write(`bench:transfer: run it as drover-agent runs, with node ${missingFlags.join(' ')} (npm run bench:transfer does)\n`);
  process.exit(2);
}
const say = (text: string): void => {
  if (!json) process.stderr.write(`${text}\n`);
};

type Method = 'local' | 'openssh' | 'ssh' | 'tls';
const ALL_METHODS: Method[] = ['local', 'openssh', 'ssh', 'tls'];
// `--methods tls,local` runs only those (for profiling one transport); the default is all.
const METHODS: Method[] = (() => {
  const i = args.indexOf('--methods');
  if (i < 0) return ALL_METHODS;
  const picked = (args[i + 1] ?? '').split(',');
  const bad = picked.filter((m) => !ALL_METHODS.includes(m as Method));
  if (bad.length > 0 || picked.length === 0) throw new Error(`--methods: expected a comma-separated list of ${ALL_METHODS.join(', ')}; got ${args[i + 1] ?? 'nothing'}`);
  return picked as Method[];
})();

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs a pipeline; returns the CPU seconds its processes used (bash's `times`, children). */
async function bash(script: string, positional: string[]): Promise<number> {
  const child = spawn('bash', ['-o', 'pipefail', '-c', `${script}; rc=$?; times >&2; exit $rc`, 'bench', ...positional], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`pipeline failed (${code}): ${stderr.trim()}`);
  // `times` prints the shell's then its children's user and system time: "0m1.234s 0m0.567s".
  const children = stderr.trim().split('\n').at(-1) ?? '';
  return [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
}

/**
 * CPU seconds (user + system) a process has used, from /proc; with `children`, plus those of
 * its children that have exited (drover's zfs clients and native pumps).
 */
function cpuOf(pid: number, children = false): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  return (children ? own + Number(fields[13]) + Number(fields[14]) : own) / 100;
}

async function fillRandom(path: string, mib: number): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: 4 << 20 });
  const block = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < mib; i++) {
    randomFillSync(block);
    if (!out.write(Buffer.from(block))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function startReceiver(node: LocalNode, identity: { ca: string; cert: string; key: string }) {
  const config = JSON.stringify({ pool: node.pool, address: node.address, id: node.uuid, ...identity });
  // The receiving agent's node flags (bin/drover-agent.js), and this process's loader (tsx).
  const flags = [...new Set([...process.execArgv, ...nodeFlagsOf(join(import.meta.dirname, '..', 'bin', 'drover-agent.js'))])];
  const child = spawn(process.execPath, [...flags, join(import.meta.dirname, 'transfer-receiver.ts'), config], { stdio: ['ignore', 'pipe', 'inherit'] });
  // The port line, among whatever else node prints there (--trace-gc when profiling).
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /^\{"port":(\d+)\}$/m.exec(seen);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error('receiver exited')));
  });
  child.stdout.resume();
  return { child, port };
}

const lease = await leaseSubnet();
const clusterName = `bt${lease.subnet}`;
const cluster = await clusterUp({ name: clusterName, nodes: 2, subnet: lease.subnet, docker: false, ssh: true }).catch((err: unknown) => {
  lease.release();
  throw err;
});
const scratch = await mkdtemp(join(tmpdir(), 'drover-bench-'));
let receiver: Awaited<ReturnType<typeof startReceiver>> | null = null;
const peers: Peer[] = [];
try {
  const [n1, n2] = cluster.nodes as [LocalNode, LocalNode];
  const source = new ZfsStore({ pool: n1.pool });
  const target = new ZfsStore({ pool: n2.pool });
  const datasetId = randomUUID();
  const dataset = await source.createDataset(datasetId, { maximumSize: null });
  say(`writing ${sizeMiB} MiB of random data on ${n1.name}…`);
  await fillRandom(join(dataset.mountpoint!, 'random.bin'), sizeMiB);
  const snap = await source.createSnapshot(datasetId, 'drover-bench');
  const sourceSnap = `${dataset.name}@drover-bench`;
  const targetName = `${n2.pool}/drover/${datasetId}`;
  await target.ensureRoot();

  const ssh = n2.ssh!;
  const knownHosts = join(scratch, 'known_hosts');
  await writeFile(knownHosts, `${ssh.host} ${ssh.hostPublicKey}\n`);
  const sshPeer = new SshPeer({
    id: n2.uuid, host: ssh.host, port: ssh.port, user: ssh.user, hostKeyFingerprint: ssh.hostKeyFingerprint,
    privateKey: await readFile(cluster.sshClientKey.privateKeyPath), pool: n2.pool,
  });
  const ca = { certPath: cluster.ca.certPath, keyPath: cluster.ca.keyPath };
  const id1 = await ensureNodeCertificate({ ca, dir: join(scratch, 'n1'), commonName: n1.uuid, address: n1.address });
  const id2 = await ensureNodeCertificate({ ca, dir: join(scratch, 'n2'), commonName: n2.uuid, address: n2.address });
  receiver = await startReceiver(n2, id2);
  const tlsPeer = new TlsPeer({ id: `${n2.uuid}-tls`, host: n2.address, port: receiver.port, identity: id1 });
  peers.push(sshPeer, tlsPeer);
  await Promise.all([sshPeer.features(), tlsPeer.features()]); // probes are start-up work, not stream time

  let streamBytes = 0;
  const viaDrover = async (peer: Peer): Promise<number> => {
    const before = process.cpuUsage();
    const childrenBefore = cpuOf(process.pid, true) - cpuOf(process.pid);
    const receiverBefore = peer === tlsPeer && receiver ? cpuOf(receiver.child.pid!, true) : 0;
    const t0 = performance.now();
    const step = await peer.beginStep(datasetId);
    const t1 = performance.now();
    try {
      // full: false skips settling the new replica's properties (bookkeeping, not transport).
      const sink = step.receive({ resumable: false, full: false });
      const send = startSend(source, sink, { datasetId, snapshot: 'drover-bench', base: null });
      // BENCH_TRACE: the MiB each progress report (every 250 ms) added, as `<ms>:<MiB>`.
      const trace: string[] = [];
      let traced = 0;
      const onBytes = (bytes: number, ms: number): void => {
        trace.push(`${ms}:${((bytes - traced) / 1048576).toFixed(0)}`);
        traced = bytes;
      };
      streamBytes = await streamStep({ send, sink, stallMs: 60_000, ...(process.env.BENCH_TRACE ? { onBytes } : {}) });
      if (process.env.BENCH_TRACE) say(`  MiB per 250 ms: ${trace.join(' ')}`);
    } finally {
      const t2 = performance.now();
      await step.end();
      if (process.env.BENCH_DEBUG) say(`  begin ${(t1 - t0).toFixed(0)} ms, stream ${(t2 - t1).toFixed(0)} ms, end ${(performance.now() - t2).toFixed(0)} ms`);
    }
    const used = process.cpuUsage(before);
    const childrenCpu = cpuOf(process.pid, true) - cpuOf(process.pid) - childrenBefore;
    const receiverCpu = peer === tlsPeer && receiver ? cpuOf(receiver.child.pid!, true) - receiverBefore : 0;
    if (process.env.BENCH_DEBUG) {
      say(`  cpu: this process ${((used.user + used.system) / 1e6).toFixed(2)} s (user ${(used.user / 1e6).toFixed(2)}), its children ${childrenCpu.toFixed(2)} s, tls receiver with children ${receiverCpu.toFixed(2)} s`);
    }
    return (used.user + used.system) / 1e6 + childrenCpu + receiverCpu;
  };
  // Each returns the CPU seconds of the transport's processes we can see: the pipeline's
  // children (zfs send/receive clients, ssh) for local/openssh; this process and its
  // children (zfs clients, native pumps), plus the tls receiver and its children, for
  // drover. Not sshd's side: it is the same for openssh and drover's ssh.
  const run: Record<Method, () => Promise<number>> = {
    local: () => bash('zfs send "$1" | zfs receive -u "$2"', [sourceSnap, targetName]),
    openssh: () =>
      bash(
        'zfs send "$1" | ssh -i "$3" -p "$4" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$5" -o Compression=no -c aes128-gcm@openssh.com "$6" zfs receive -u "$2"',
        [sourceSnap, targetName, cluster.sshClientKey.privateKeyPath, String(ssh.port), knownHosts, `${ssh.user}@${ssh.host}`],
      ),
    ssh: () => viaDrover(sshPeer),
    tls: () => viaDrover(tlsPeer),
  };

  // The zfs-fuse daemon does the sending and the receiving for every method (one daemon
  // serves every pool here): its CPU per GiB shows what is left for the transport.
  const daemonPid = Number(spawnSync('pgrep', ['-x', '-o', 'zfs-fuse'], { encoding: 'utf8' }).stdout.trim()) || null;
  const daemonCpu: Record<Method, number[]> = { local: [], openssh: [], ssh: [], tls: [] };
  const seconds: Record<Method, number[]> = { local: [], openssh: [], ssh: [], tls: [] };
  const cpu: Record<Method, number[]> = { local: [], openssh: [], ssh: [], tls: [] };
  for (let i = 0; i < runs; i++) {
    // Rotate the order so no method always runs first (warm caches, a quieter machine).
    const order = METHODS.map((_, k) => METHODS[(k + i) % METHODS.length]!);
    for (const method of order) {
      await target.destroyDataset(datasetId);
      const started = performance.now();
      const daemonBefore = daemonPid ? cpuOf(daemonPid) : 0;
      cpu[method].push(await run[method]());
      if (daemonPid) daemonCpu[method].push(cpuOf(daemonPid) - daemonBefore);
      const s = (performance.now() - started) / 1000;
      const received = (await target.listSnapshots(datasetId)).find((x) => x.snapshot === 'drover-bench');
      if (received?.guid !== snap.guid) throw new Error(`${method}: received guid ${received?.guid} ≠ source ${snap.guid}`);
      seconds[method].push(s);
      say(`run ${i + 1} ${method.padEnd(8)} ${s.toFixed(2)} s  (cpu ${cpu[method].at(-1)!.toFixed(2)} s)`);
    }
  }
  await target.destroyDataset(datasetId);

  const mib = streamBytes / (1 << 20);
  const rates = Object.fromEntries(METHODS.map((m) => [m, seconds[m].map((s) => mib / s)])) as Record<Method, number[]>;
  const med = Object.fromEntries(METHODS.map((m) => [m, median(rates[m])])) as Record<Method, number>;
  const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        localMiBs: round(med.local), opensshMiBs: round(med.openssh), sshMiBs: round(med.ssh), tlsMiBs: round(med.tls),
        sshRatio: round(med.ssh / med.local, 2), tlsRatio: round(med.tls / med.local, 2),
      })}\n`,
    );
  } else {
    process.stdout.write(`stream ${mib.toFixed(1)} MiB, ${runs} runs each, interleaved\n`);
    for (const m of METHODS) {
      process.stdout.write(
        `${m.padEnd(8)} median ${med[m].toFixed(0).padStart(5)} MiB/s  ratio ${(med[m] / med.local).toFixed(2)}  runs ${rates[m].map((r) => r.toFixed(0)).join(' / ')}  cpu ${(median(cpu[m]) / (mib / 1024)).toFixed(2)} s/GiB${daemonPid ? `, zfs-fuse ${(median(daemonCpu[m]) / (mib / 1024)).toFixed(2)} s/GiB` : ''}\n`,
      );
    }
    process.stdout.write(`targets: tls ≥ 0.80, ssh ≥ 0.60 of local; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs\n`);
  }
} finally {
  for (const p of peers) await p.close();
  receiver?.child.kill('SIGTERM');
  await clusterDown(clusterName);
  lease.release();
  await rm(scratch, { recursive: true, force: true });
}
