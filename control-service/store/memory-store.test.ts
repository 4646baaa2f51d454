import { MemoryConfigStore } from './memory-store.ts';
import { storeContract } from './store-contract.ts';

storeContract('MemoryConfigStore', async () => ({ store: new MemoryConfigStore() }));
