import { describe, expect, it } from 'vitest';
import { argv, parseDatasets, parseSnapshots } from './argv.ts';

const id = '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b';

describe('zfs command lines and their output', () => {
  it('builds receive with -u always and -s only when resumable', () => {
    expect(argv.receive('tank', id, false)).toEqual(['receive', '-u', `tank/drover/${id}`]);
    expect(argv.receive('tank', id, true)).toEqual(['receive', '-u', '-s', `tank/drover/${id}`]);
  });

  it('builds an incremental send from the base snapshot', () => {
    expect(argv.send('tank', id, 'drover-b', 'drover-a')).toEqual(['send', '-i', `tank/drover/${id}@drover-a`, `tank/drover/${id}@drover-b`]);
  });

  it('builds an incremental send with every intermediate snapshot when asked (a move of a replicated dataset)', () => {
    expect(argv.send('tank', id, 'drover-c', 'drover-a', [], true)).toEqual(['send', '-I', `tank/drover/${id}@drover-a`, `tank/drover/${id}@drover-c`]);
  });

  it('parses zfs get -Hp snapshots oldest first, keeps 64-bit guids exact and skips foreign snapshots', () => {
    const out = [
      `tank/drover/${id}\tguid\t12682858498109580117`,
      `tank/drover/${id}@drover-b\tguid\t18446744073709551615`,
      `tank/drover/${id}@drover-b\tcreatetxg\t40`,
      `tank/drover/${id}@drover-b\tuserrefs\t1`,
      `tank/drover/${id}@drover-a\tguid\t2620617926516083512`,
      `tank/drover/${id}@drover-a\tcreatetxg\t18`,
      `tank/drover/${id}@drover-a\tuserrefs\t0`,
      `tank/drover/${id}@manual\tguid\t1`,
      `tank/drover/${id}@manual\tcreatetxg\t5`,
      '',
    ].join('\n');
    expect(parseSnapshots('tank', id, out)).toEqual([
      { name: `tank/drover/${id}@drover-a`, snapshot: 'drover-a', guid: '2620617926516083512', createtxg: 18, userrefs: 0 },
      { name: `tank/drover/${id}@drover-b`, snapshot: 'drover-b', guid: '18446744073709551615', createtxg: 40, userrefs: 1 },
    ]);
  });

  it('reads read-only from drover\'s mirror property, which zfs-fuse reports correctly while mounted', () => {
    const out = [
      `tank/drover/${id}\ttype\tfilesystem`,
      `tank/drover/${id}\tmountpoint\t/srv/${id}`,
      `tank/drover/${id}\tmounted\tyes`,
      `tank/drover/${id}\treadonly\toff`,
      `tank/drover/${id}\tdrover:readonly\ton`,
      `tank/drover/${id}\trefquota\t0`,
      `tank/drover/${id}\tused\t114688`,
      `tank/drover/${id}\treferenced\t114688`,
      'tank/drover\ttype\tfilesystem',
    ].join('\n');
    expect(parseDatasets('tank', out)).toEqual([
      { datasetId: id, name: `tank/drover/${id}`, mountpoint: `/srv/${id}`, mounted: true, readonly: true, refquota: null, usedBytes: 114688, referencedBytes: 114688 },
    ]);
  });
});
