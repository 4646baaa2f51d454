import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { buildApp } from './app.ts';
import { VolumeDriver } from './driver.ts';
import { FakeControl } from './testing/fake-control.ts';
import { MountStore } from './mount-store.ts';
import { startPluginServer, type PluginServer } from './plugin-server.ts';
import { PromPluginMetrics } from './prom-metrics.ts';
import { startMetricsListener } from '#common/metrics-listener.ts';
import { sampleValue, scrape } from '#common/testing/prom-text.ts';

const ME = '11111111-1111-4111-8111-111111111111';
let dir: string;
let server: PluginServer;
let control: FakeControl;
let metrics: PromPluginMetrics;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-app-'));
  control = new FakeControl({ nodes: [{ uuid: ME, host: '127.0.0.11' }] });
  const driver = new VolumeDriver({ control, store: await MountStore.open(join(dir, 'state')), nodeUuid: ME, log: silentLogger() });
  metrics = new PromPluginMetrics();
  server = await startPluginServer(buildApp({ driver, log: silentLogger(), metrics }), join(dir, 'test.sock'), silentLogger());
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends one request exactly as Docker 20.10.24 does (reference §1.2) and returns the raw answer. */
function dockerCall(method: string, body: string | null): Promise<{ status: number; headers: string; body: string }> {
  const payload = body === null ? '' : body + '\n';
  const head =
    `POST /${method} HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\n` +
    `Content-Length: ${Buffer.byteLength(payload)}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect({ path: server.socketPath });
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (raw += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [headers = '', rest = ''] = raw.split('\r\n\r\n');
      resolve({ status: Number(headers.split(' ')[1]), headers, body: rest });
    });
    socket.write(head + payload);
  });
}

describe('the plugin on its unix socket, spoken to as Docker 20.10 speaks', () => {
  it('activates with an empty body and no Content-Type', async () => {
    const answer = await dockerCall('Plugin.Activate', null);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ Implements: ['VolumeDriver'] });
  });

  it('accepts JSON bodies with no Content-Type, an empty Host and a trailing newline', async () => {
    expect(JSON.parse((await dockerCall('VolumeDriver.Create', '{"Name":"v1","Opts":null}')).body)).toEqual({ Err: '' });
    const get = await dockerCall('VolumeDriver.Get', '{"Name":"v1"}');
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({ Err: '', Volume: { Name: 'v1', Status: { local: true } } });
    const mount = JSON.parse((await dockerCall('VolumeDriver.Mount', `{"Name":"v1","ID":"${'a'.repeat(64)}"}`)).body);
    expect(mount).toEqual({ Err: '', Mountpoint: `/fake/${ME}/${control.datasets[0]!.dataset_id}` });
    expect(JSON.parse((await dockerCall('VolumeDriver.Unmount', `{"Name":"v1","ID":"${'a'.repeat(64)}"}`)).body)).toEqual({ Err: '' });
  });

  it('counts calls by endpoint and outcome and times mounts, on its /metrics listener', async () => {
    await dockerCall('VolumeDriver.Create', '{"Name":"v1","Opts":null}');
    await dockerCall('VolumeDriver.Mount', `{"Name":"v1","ID":"${'a'.repeat(64)}"}`);
    await dockerCall('VolumeDriver.Mount', '{"Name":"v1"}');
    await dockerCall('VolumeDriver.Get', '{"Name":"nope"}');
    const listener = await startMetricsListener('127.0.0.1:0', metrics, silentLogger());
    try {
      const text = (await scrape(listener.address)).text;
      expect(sampleValue(text, 'drover_plugin_calls_total', { endpoint: 'VolumeDriver.Create', outcome: 'ok' })).toBe(1);
      expect(sampleValue(text, 'drover_plugin_calls_total', { endpoint: 'VolumeDriver.Mount', outcome: 'error' })).toBe(1);
      expect(sampleValue(text, 'drover_plugin_calls_total', { endpoint: 'VolumeDriver.Get', outcome: 'error' })).toBe(1);
      expect(sampleValue(text, 'drover_plugin_mount_duration_seconds_count', { outcome: 'ok' })).toBe(1);
      expect(text).toContain('process_start_time_seconds');
    } finally {
      await listener.close();
    }
  });

  it('declares global scope', async () => {
    expect(JSON.parse((await dockerCall('VolumeDriver.Capabilities', '{}')).body)).toEqual({ Capabilities: { Scope: 'global' } });
  });

  it('answers every failure with HTTP 200 and a clear Err', async () => {
    for (const [method, body, err] of [
      ['VolumeDriver.Get', '{"Name":"nope"}', 'no drover volume named "nope"'],
      ['VolumeDriver.Mount', '{"Name":"v1"}', 'bad request to VolumeDriver.Mount: ID is missing'],
      ['VolumeDriver.Create', '{"Name":"../x"}', 'bad request to VolumeDriver.Create: Name must start with a letter or digit and hold only letters, digits, "_", "." or "-"'],
      ['VolumeDriver.Create', '{"Name":', 'bad request to VolumeDriver.Create: request body is not JSON: "{\\"Name\\":\\n"'],
      ['VolumeDriver.Create', '{"Name":"v2","Opts":{"size":"tiny"}}', 'option size="tiny" is not a size: use bytes or a number with K, M, G or T (e.g. size=1G)'],
    ] as const) {
      const answer = await dockerCall(method, body);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ Err: err });
    }
  });

  it('answers an endpoint it does not have with 404', async () => {
    expect((await dockerCall('VolumeDriver.Teleport', '{}')).status).toBe(404);
  });

  it('makes one dataset when Docker sends the same Create twice at once (a retry)', async () => {
    const answers = await Promise.all([dockerCall('VolumeDriver.Create', '{"Name":"v1","Opts":{}}'), dockerCall('VolumeDriver.Create', '{"Name":"v1","Opts":{}}')]);
    expect(answers.map((a) => JSON.parse(a.body))).toEqual([{ Err: '' }, { Err: '' }]);
    expect(control.datasets).toHaveLength(1);
  });

  it('lists volumes and reports an unreachable control service in List and Create', async () => {
    await dockerCall('VolumeDriver.Create', '{"Name":"v1","Opts":null}');
    expect(JSON.parse((await dockerCall('VolumeDriver.List', '{}')).body).Volumes.map((v: { Name: string }) => v.Name)).toEqual(['v1']);
    control.unreachable = true;
    // The cached view still answers List; Create needs the control service and says so.
    expect(JSON.parse((await dockerCall('VolumeDriver.List', '{}')).body).Volumes).toHaveLength(1);
    expect(JSON.parse((await dockerCall('VolumeDriver.Create', '{"Name":"v2","Opts":null}')).body).Err).toBe(
      'control service did not answer (fake: unreachable)',
    );
  });
});
