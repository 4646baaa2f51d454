import { datasetStoreContract } from '../testing/dataset-store.contract.ts';
import { FakeDatasetStore } from '../testing/fake-dataset-store.ts';

datasetStoreContract('in-memory fake', async () => ({
  store: new FakeDatasetStore({ pool: 'fakepool', mountRoot: '/mnt/fake' }),
  cleanup: async () => {},
}));
