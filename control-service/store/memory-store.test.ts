import { MemoryConfigStore } from './memory-store.ts';
import { storeContract } from '../testing/store.contract.ts';

storeContract('MemoryConfigStore', async () => ({ store: new MemoryConfigStore() }));
