import { FakeControl } from './testing/fake-control.ts';
import { controlPlaneContract } from './testing/control.contract.ts';

const nodeA = '11111111-1111-4111-8111-111111111111';
const nodeB = '22222222-2222-4222-8222-222222222222';
let control = new FakeControl();

controlPlaneContract('in-memory fake', () => {
  control = new FakeControl({ nodes: [{ uuid: nodeA, host: '127.0.0.11' }, { uuid: nodeB, host: '127.0.0.12' }] });
  return { control, nodeA, nodeB };
});
