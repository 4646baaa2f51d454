/**
 * Picks the TCP engine. `auto`: the libuv one when this Node exposes it, else node:net.
 * `native`: the C relay (docs/DESIGN.md §32) when it is built, over the uv engine for what it
 * hands back. `auto` does not pick it yet: repeated runs have not yet met the whole target in
 * 2 of 3, and the scale, web-stack and demo e2e files have not run on it (docs/DESIGN.md §32
 * "`auto` still picks uv"; bench/RESULTS.md, "Proxy", 2026-12-07 sessions 6 and 7).
 */
import { silentLogger, type Logger } from '#common/log.ts';
import { createNetEngine } from './tcp-net.ts';
import type { TcpEngine, TcpEngineOptions } from './tcp.ts';
import { createNativeEngine } from './tcp-native.ts';
import { createUvEngine, loadUvBinding } from './tcp-uv.ts';

export const ENGINE_CHOICES = ['auto', 'uv', 'net', 'native'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** Throws DROVER_ENGINE_UNAVAILABLE when `uv` or `native` is asked for and cannot run here. */
export function createEngine(choice: EngineChoice, options: TcpEngineOptions & { log?: Logger } = {}): TcpEngine {
  if (choice === 'native') return createNativeEngine({ ...options, log: options.log ?? silentLogger() });
  if (choice === 'net' || (choice === 'auto' && loadUvBinding() === null)) return createNetEngine(options);
  return createUvEngine(options);
}
