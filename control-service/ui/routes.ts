/**
 * The web dashboard's routes (docs/DESIGN.md §26): `GET /ui` (the page) and `GET /ui/<file>`
 * (its modules and style sheet), both entries of the one route table with `access: user`, so
 * they are served over the API's mutual TLS to user certificates only, like the API the page
 * then calls. Files are read once, on the first request.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DroverError } from '#common/errors.ts';
import type { Router } from '../http/router.ts';
import { loadDashboardAssets, type Asset, type DashboardAssets } from './assets.ts';

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, headers: Record<string, string> = {}): FastifyReply {
  // no-cache: the browser asks again each time and gets a 304 while the file is the same,
  // so a control service upgraded in place never serves a stale mix of modules.
  void reply.headers({ 'cache-control': 'no-cache', etag: asset.etag, 'x-content-type-options': 'nosniff', ...headers });
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.code(200).type(asset.type).send(asset.body);
}

export function dashboardRoutes(router: Router, load: () => DashboardAssets = loadDashboardAssets): void {
  let assets: DashboardAssets | null = null;
  const get = () => (assets ??= load());

  router.handle('dashboard', async ({ request, reply }) => {
    const { page, csp } = get();
    return send(request, reply, page, { 'content-security-policy': csp, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
  });

  router.handle('dashboardFile', async ({ params, request, reply }) => {
    const asset = get().files.get(params.file);
    if (!asset) throw new DroverError('DROVER_NOT_FOUND', `The dashboard has no file ${params.file}.`, { detail: { file: params.file } });
    return send(request, reply, asset);
  });
}
