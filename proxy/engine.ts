/** Picks the TCP engine: the libuv one when this Node exposes it (`auto`), else node:net. */
import { createNetEngine } from './tcp-net.ts';
import type { TcpEngine, TcpEngineOptions } from './tcp.ts';
import { createUvEngine, loadUvBinding } from './tcp-uv.ts';

export type EngineChoice = 'auto' | 'uv' | 'net';

/** Throws DROVER_ENGINE_UNAVAILABLE when `uv` is asked for and this Node lacks it. */
export function createEngine(choice: EngineChoice, options: TcpEngineOptions = {}): TcpEngine {
  if (choice === 'net' || (choice === 'auto' && loadUvBinding() === null)) return createNetEngine(options);
  return createUvEngine(options);
}
