/**
 * A process that starts the native engine, destroys it and then prints "after destroyAll":
 * nothing else keeps it alive, so it prints only if destroyAll's promise holds the process
 * until the relay is gone (native.int.test.ts).
 */
import { createEngine } from '../engine.ts';

const engine = createEngine('native');
setTimeout(() => {
  void engine.destroyAll().then(() => process.stdout.write('after destroyAll\n'));
}, 100);
