import { existsSync } from 'node:fs';
import { containerRuntimeContract } from './container-runtime.contract.ts';
import { FakeContainerRuntime } from './fake-container-runtime.ts';

// The fake the planner's, executor's and loop's tests run on keeps the contract the dockerode
// adapter keeps on a real dockerd (test/agent/container-runtime.int.test.ts).
containerRuntimeContract('the in-memory fake', async () => {
  const runtime = new FakeContainerRuntime();
  runtime.bindSourceExists = existsSync;
  return {
    runtime,
    image: 'drover/busybox:latest',
    hostIp: '127.0.0.1',
    kill: async (id) => runtime.crash(runtime.containers.get(id)!.name),
    runsCommands: false,
  };
});
