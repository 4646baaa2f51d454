import { datasetStoreContract } from './dataset-store.contract.ts';
import { FakeDatasetStore } from './fake-dataset-store.ts';

datasetStoreContract('in-memory fake', async () => ({
  store: new FakeDatasetStore({ pool: 'fakepool', mountRoot: '/mnt/fake' }),
  cleanup: async () => {},
}));
