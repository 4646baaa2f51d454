import { FakeMigrationControl } from '../testing/fake-migration-control.ts';
import { migration } from '../testing/fixtures.ts';
import { migrationControlContract } from '../testing/migration-control.contract.ts';

// The real control service runs the same contract in test/agent/migration-control-contract.test.ts.
migrationControlContract('the in-memory fake', async () => {
  const control = new FakeMigrationControl();
  return {
    control,
    start: async () => {
      const m = migration({ phase: 'pending', generation: 4 });
      control.add(m);
      return m;
    },
    cleanup: async () => {},
  };
});
