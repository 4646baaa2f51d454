/**
 * The native data pump (native/drover-pump) between two real processes on loopback: what
 * reaches the output is exactly what went in, or the receiving pump fails with a code that
 * says why and writes nothing it could not authenticate. A relay between the pumps flips
 * bytes or cuts the stream. The secrets come from a real TLS session's exporter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  HELLO_BYTES,
  channelSecrets,
  findNativePump,
  helloChannel,
  startReceivePump,
  startSendPump,
  type PumpProcess,
} from '../../convergence-agent/transfer/native-pump.ts';
import { ensureClusterCa, ensureNodeCertificate } from '../../convergence-agent/transfer/tls-certs.ts';
import { describeWith } from '../support/require.ts';

const FRAME = 256 * 1024;

describeWith(['native-pump'], 'the native data pump', () => {
  const pumpPath = findNativePump()!;
  let dir: string;
  const cleanups: Array<() => void> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-pump-test-'));
  });

  afterAll(async () => {
    for (const c of cleanups) c();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A receiver like the transfer server's: reads the hello, hands the socket to a pump writing into `cat > file`. */
  async function receiver(key: Buffer, outFile: string): Promise<{ port: number; pump: Promise<PumpProcess>; hello: Promise<Buffer>; sink: ChildProcess }> {
    const sink = spawn('sh', ['-c', 'exec cat > "$1"', 'sink', outFile], { stdio: ['pipe', 'ignore', 'ignore'] });
    let server: Server;
    let gotHello!: (b: Buffer) => void;
    const hello = new Promise<Buffer>((r) => (gotHello = r));
    const pump = new Promise<PumpProcess>((resolve) => {
      server = createServer((socket) => {
        let head = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          head = Buffer.concat([head, chunk]);
          if (head.length < HELLO_BYTES) return;
          socket.off('data', onData);
          socket.pause();
          gotHello(head);
          const p = startReceivePump(pumpPath, socket, sink.stdin!, key);
          socket.destroy();
          sink.stdin!.destroy();
          server.close();
          resolve(p);
        };
        socket.on('data', onData);
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => {
      server.close();
      sink.kill();
    });
    return { port: (server!.address() as { port: number }).port, pump, hello, sink };
  }

  /** A relay that passes bytes on, flipping the byte at `flipAt` or cutting after `cutAfter`. */
  async function relay(port: number, fault: { flipAt?: number; cutAfter?: number }): Promise<number> {
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = netConnect(port, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      let seen = 0;
      client.on('data', (chunk: Buffer) => {
        if (fault.flipAt !== undefined && seen <= fault.flipAt && fault.flipAt < seen + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[fault.flipAt - seen]! ^= 0x01;
        }
        if (fault.cutAfter !== undefined && seen + chunk.length > fault.cutAfter) {
          upstream.end(chunk.subarray(0, fault.cutAfter - seen));
          client.destroy();
          seen = fault.cutAfter;
          return;
        }
        seen += chunk.length;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    return (server.address() as { port: number }).port;
  }

  /** Runs `dd if=<input>` into a sending pump; returns both pumps' verdicts. */
  async function transfer(input: Buffer, options: { fault?: { flipAt?: number; cutAfter?: number }; receiverKey?: Buffer } = {}) {
    const key = randomBytes(16);
    const hello = Buffer.concat([Buffer.from('DRVRDAT1'), randomBytes(48)]);
    const inFile = join(dir, `in-${randomBytes(4).toString('hex')}`);
    const outFile = `${inFile}.out`;
    await writeFile(inFile, input);
    const rx = await receiver(options.receiverKey ?? key, outFile);
    const port = options.fault ? await relay(rx.port, options.fault) : rx.port;
    const sender = startSendPump(pumpPath, { host: '127.0.0.1', port, timeoutMs: 10_000 });
    const cmdline = await readFile(`/proc/${sender.pid}/cmdline`, 'latin1');
    const dd = spawn('dd', [`if=${inFile}`, 'bs=1M', 'status=none'], { stdio: ['ignore', sender.stdin!, 'ignore'] });
    sender.stdin!.destroy();
    sender.give(Buffer.concat([key, hello]));
    const progress: number[] = [];
    const sent = sender.watch({ stallMs: 30_000, onBytes: (b) => progress.push(b) }).then(
      (bytes) => ({ ok: true as const, bytes }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const recvPump = await rx.pump;
    const received = await recvPump.done().then(
      (bytes) => ({ ok: true as const, bytes }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const senderResult = await sent;
    await new Promise((r) => (rx.sink.exitCode !== null ? r(null) : rx.sink.once('exit', r)));
    dd.kill();
    return { sender: senderResult, received, output: await readFile(outFile), cmdline, progress, hello: await rx.hello, sentHello: hello, key };
  }

  it('moves a stream intact, reports its progress, and keeps the secrets off the command line', async () => {
    const input = randomBytes(8 * FRAME + 12345);
    const r = await transfer(input);
    expect(r.received).toEqual({ ok: true, bytes: input.length });
    expect(r.sender).toEqual({ ok: true, bytes: input.length });
    expect(createHash('sha256').update(r.output).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
    expect(r.progress.at(-1)).toBe(input.length);
    expect(r.hello.equals(r.sentHello)).toBe(true);
    expect(r.cmdline.split('\0').filter(Boolean)).toEqual([pumpPath, 'send', '127.0.0.1', expect.stringMatching(/^\d+$/), '10000']);
    expect(r.cmdline).not.toContain(r.key.toString('hex'));
  });

  it('moves an empty stream and one of exactly whole frames', async () => {
    for (const size of [0, 2 * FRAME]) {
      const input = randomBytes(size);
      const r = await transfer(input);
      expect(r.received).toEqual({ ok: true, bytes: size });
      expect(r.output.equals(input)).toBe(true);
    }
  });

  it('refuses a flipped byte: the frame fails authentication and only the frames before it reach the output', async () => {
    const input = randomBytes(6 * FRAME);
    // Past the hello, inside the third frame's ciphertext.
    const flipAt = HELLO_BYTES + 2 * (5 + FRAME + 16) + 5 + 1000;
    const r = await transfer(input, { fault: { flipAt } });
    expect(r.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_INTEGRITY', retryable: true } });
    expect((r.received as { err: Error }).err.message).toMatch(/frame 2 failed authentication/);
    expect(r.output.length).toBe(2 * FRAME);
    expect(r.output.equals(input.subarray(0, 2 * FRAME))).toBe(true);
  });

  it('refuses a stream cut short: the receiver says it ended before its last frame', async () => {
    const input = randomBytes(6 * FRAME);
    const r = await transfer(input, { fault: { cutAfter: HELLO_BYTES + 3 * (5 + FRAME + 16) } });
    expect(r.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_INTERRUPTED', retryable: true } });
    expect((r.received as { err: Error }).err.message).toMatch(/before its last frame/);
    expect(r.output.length).toBe(3 * FRAME);
  });

  /** Frames as an attacker holding the key would write them (README "Frames"), straight to a receiving pump. */
  function seal(key: Buffer, frame: number, payload: Buffer, last: boolean): Buffer {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(payload.length, 0);
    header[4] = last ? 1 : 0;
    const iv = Buffer.alloc(12);
    iv.writeBigUInt64BE(BigInt(frame), 4);
    const cipher = createCipheriv('aes-128-gcm', key, iv);
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(payload), cipher.final()]);
    return Buffer.concat([header, body, cipher.getAuthTag()]);
  }

  async function sendRaw(key: Buffer, wire: Buffer) {
    const outFile = join(dir, `raw-${randomBytes(4).toString('hex')}.out`);
    const rx = await receiver(key, outFile);
    const socket = netConnect(rx.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(Buffer.concat([Buffer.from('DRVRDAT1'), randomBytes(48)]));
    await once(socket, 'data'); // the acknowledgement
    socket.end(wire);
    const received = await (await rx.pump).done().then(
      (bytes) => ({ ok: true as const, bytes }),
      (err: unknown) => ({ ok: false as const, err: err as Error & { code: string } }),
    );
    socket.destroy();
    await new Promise((r) => (rx.sink.exitCode !== null ? r(null) : rx.sink.once('exit', r)));
    return { received, output: await readFile(outFile) };
  }

  it('refuses an empty frame that is not the last, and a frame sealed under a repeated number, even with the right key', async () => {
    const key = randomBytes(16);
    const empty = await sendRaw(key, Buffer.concat([seal(key, 0, Buffer.from('abc'), false), seal(key, 1, Buffer.alloc(0), false), seal(key, 2, Buffer.from('z'), true)]));
    expect(empty.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_PROTOCOL' } });
    expect(empty.output.toString()).toBe('abc');
    const replayed = await sendRaw(key, Buffer.concat([seal(key, 0, Buffer.from('abc'), false), seal(key, 0, Buffer.from('abc'), true)]));
    expect(replayed.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_INTEGRITY' } });
    expect(replayed.output.toString()).toBe('abc');
    const whole = await sendRaw(key, Buffer.concat([seal(key, 0, Buffer.from('abc'), false), seal(key, 1, Buffer.alloc(0), true)]));
    expect(whole.received).toEqual({ ok: true, bytes: 3 });
    const trailing = await sendRaw(key, Buffer.concat([seal(key, 0, Buffer.from('abc'), true), Buffer.from('x')]));
    expect(trailing.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_PROTOCOL' } });
  });

  it('writes nothing when the receiver holds another key', async () => {
    const r = await transfer(randomBytes(3 * FRAME), { receiverKey: randomBytes(16) });
    expect(r.received).toMatchObject({ ok: false, err: { code: 'DROVER_TRANSFER_INTEGRITY' } });
    expect(r.output.length).toBe(0);
  });

  it('keeps a slow stream moving: a partial frame goes out once the input pauses, so it is not taken for a stall', async () => {
    const key = randomBytes(16);
    const outFile = join(dir, 'slow.out');
    const rx = await receiver(key, outFile);
    const sender = startSendPump(pumpPath, { host: '127.0.0.1', port: rx.port, timeoutMs: 10_000 });
    // 6 pieces, 0.4 s apart: 2.4 s in all, with a stall limit of 1 s on both pumps.
    const slow = spawn('sh', ['-c', 'for i in 1 2 3 4 5 6; do printf "piece$i "; sleep 0.4; done'], { stdio: ['ignore', sender.stdin!, 'ignore'] });
    sender.stdin!.destroy();
    sender.give(Buffer.concat([key, Buffer.concat([Buffer.from('DRVRDAT1'), randomBytes(48)])]));
    const progress: number[] = [];
    const sent = sender.watch({ stallMs: 1_000, onBytes: (b) => progress.push(b) });
    const recvPump = await rx.pump;
    await expect(recvPump.watch({ stallMs: 1_000 })).resolves.toBe(42);
    await expect(sent).resolves.toBe(42);
    await new Promise((r) => (rx.sink.exitCode !== null ? r(null) : rx.sink.once('exit', r)));
    expect((await readFile(outFile, 'utf8')).trim()).toBe('piece1 piece2 piece3 piece4 piece5 piece6');
    slow.kill();
  });

  it('kills a sending pump that moved no byte for stallMs: the receiver accepted, then stopped reading', async () => {
    const server = createServer((socket) => {
      socket.once('data', () => {
        socket.write(Buffer.from([0x06])); // the acknowledgement; nothing is read after it
        socket.pause();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => server.close());
    const sender = startSendPump(pumpPath, { host: '127.0.0.1', port: (server.address() as { port: number }).port, timeoutMs: 10_000 });
    // More than the socket buffers on both sides hold.
    const zero = spawn('head', ['-c', String(256 << 20), '/dev/zero'], { stdio: ['ignore', sender.stdin!, 'ignore'] });
    sender.stdin!.destroy();
    sender.give(Buffer.concat([randomBytes(16), Buffer.concat([Buffer.from('DRVRDAT1'), randomBytes(48)])]));
    const started = Date.now();
    await expect(sender.watch({ stallMs: 1_000 })).rejects.toMatchObject({ code: 'DROVER_TRANSFER_STALLED', retryable: true });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(sender.bytes).toBeGreaterThan(0);
    expect(() => process.kill(sender.pid!, 0)).toThrow();
    zero.kill();
  });

  it('derives the same key and hello on both ends of one TLS session, and different ones for another channel', async () => {
    const ca = await ensureClusterCa(join(dir, 'ca'));
    const a = await ensureNodeCertificate({ ca, dir: join(dir, 'a'), commonName: 'a', address: '127.0.0.1' });
    const b = await ensureNodeCertificate({ ca, dir: join(dir, 'b'), commonName: 'b', address: '127.0.0.1' });
    const server = createTlsServer({ key: a.key, cert: a.cert, ca: a.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    const serverSide = new Promise<TLSSocket>((resolve) => server.once('secureConnection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const client = tlsConnect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, ca: b.ca, cert: b.cert, key: b.key });
    try {
      await once(client, 'secureConnect');
      const other = await serverSide;
      const channel = randomBytes(16);
      const mine = channelSecrets(client, channel);
      const theirs = channelSecrets(other, channel);
      expect(mine.key.equals(theirs.key)).toBe(true);
      expect(mine.hello.equals(theirs.hello)).toBe(true);
      expect(helloChannel(mine.hello)).toBe(channel.toString('hex'));
      expect(channelSecrets(client, randomBytes(16)).key.equals(mine.key)).toBe(false);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
