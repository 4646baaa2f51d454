import { controlChannelContract } from './control-channel.contract.ts';
import { FakeControlChannel } from './fake-control-channel.ts';
import { NODE_A, desired } from './fixtures.ts';

// The loop's tests run on this fake; it keeps the contract the HTTP channel keeps against
// the real control service (test/agent/control-channel.test.ts).
controlChannelContract('the in-memory fake', async () => {
  const channel = new FakeControlChannel();
  let version = 1;
  channel.publish({ ...desired(), version });
  return {
    channel,
    nodeUuid: NODE_A,
    report: { uuid: NODE_A, host: '127.0.0.11', era: 'era-1', labels: {}, transfer: {}, datasets: [], containers: [], problems: [], replication: [] },
    change: async () => channel.publish({ ...desired(), version: ++version }),
    close: async () => {},
  };
});
