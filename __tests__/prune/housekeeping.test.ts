/**
 * The housekeeping verdicts of the prune policy (the deletions no entry rule covers: broken
 * entries, verify --repair, what an older store left), as tables. Pure: no files,
 * no clock; the store's maintenance room gathers the facts and carries the verdicts out.
 */
import { describe, expect, it } from '@jest/globals';
import {
  planDropBroken,
  planOrphanBlobs,
  planRepair,
  planSweepOldLayout,
} from '../../src/prune/policy.js';
import type { EntryFacts, RepairFacts } from '../../src/prune/types.js';

const MIN = 60_000;
const NOW = Date.UTC(2025, 5, 1);

const a: EntryFacts = { key: 'a', dir: 'app/1/aa', blobs: ['x', 'y'] };
const b: EntryFacts = { key: 'b', dir: 'app/1/bb', blobs: ['y'] };
const c: EntryFacts = { key: 'c', dir: 'lib/1/cc', blobs: ['z'] };

describe('planDropBroken', () => {
  const cases: [string, string[], string[]][] = [
    ['nothing gone', [], []],
    ['a blob only one entry needs', ['x'], ['a']],
    ['a blob two entries share', ['y'], ['a', 'b']],
    ['a blob nobody references', ['w'], []],
  ];
  for (const [name, gone, dropped] of cases) {
    it(name, () => {
      const verdicts = planDropBroken([a, b, c], new Set(gone));
      expect(verdicts.map((v) => v.target)).toEqual(dropped);
      expect(verdicts.every((v) => v.reason === 'missing-blob')).toBe(true);
    });
  }
});

describe('planRepair', () => {
  const facts = (over: Partial<RepairFacts>): RepairFacts => ({
    entries: [a, b, c],
    badEntries: [],
    missingBlobs: [],
    corruptBlobs: [],
    blobSizes: new Map([
      ['x', 10],
      ['y', 20],
      ['z', 30],
    ]),
    entryDirs: ['app/1/aa', 'app/1/bb', 'lib/1/cc'],
    ...over,
  });
  const cases: [string, Partial<RepairFacts>, string[], [string, string][], [string, string][]][] =
    [
      ['a sound store keeps everything', {}, ['a', 'b', 'c'], [], []],
      [
        'a bad entry goes with its directory',
        { badEntries: ['b'] },
        ['a', 'c'],
        [['b', 'bad-entry']],
        [['app/1/bb', 'bad-entry']],
      ],
      [
        'a missing blob takes every entry needing it',
        {
          missingBlobs: ['y'],
          blobSizes: new Map([
            ['x', 10],
            ['z', 30],
          ]),
        },
        ['c'],
        [
          ['a', 'missing-blob'],
          ['b', 'missing-blob'],
        ],
        [
          ['app/1/aa', 'missing-blob'],
          ['app/1/bb', 'missing-blob'],
        ],
      ],
      [
        'a blob gone since verify (no size now) counts as missing',
        {
          blobSizes: new Map([
            ['x', 10],
            ['y', 20],
          ]),
        },
        ['a', 'b'],
        [['c', 'missing-blob']],
        [['lib/1/cc', 'missing-blob']],
      ],
      [
        'a directory no entry owns is a stray',
        { entryDirs: ['app/1/aa', 'app/1/bb', 'lib/1/cc', 'lib/2/dd'] },
        ['a', 'b', 'c'],
        [],
        [['lib/2/dd', 'stray-dir']],
      ],
    ];
  for (const [name, over, kept, entries, dirs] of cases) {
    it(name, () => {
      const plan = planRepair(facts(over));
      expect(plan.keep.map((e) => e.key)).toEqual(kept);
      expect(plan.entries.map((v) => [v.target, v.reason])).toEqual(entries);
      expect(plan.dirs.map((v) => [v.target, v.reason])).toEqual(dirs);
    });
  }

  it('deletes corrupt blobs first and keeps no entry that needs one', () => {
    const plan = planRepair(facts({ corruptBlobs: ['z'] }));
    expect(plan.blobs).toEqual([{ target: 'z', reason: 'corrupt-blob', bytes: 30 }]);
    expect(plan.keep.map((e) => e.key)).toEqual(['a', 'b']);
    expect([...plan.keptBlobSizes]).toEqual([
      ['x', 10],
      ['y', 20],
    ]);
  });
});

describe('planOrphanBlobs', () => {
  it('takes unreferenced blobs older than the orphan age, nothing younger', () => {
    const files = [
      { digest: 'x', mtimeMs: NOW - 60 * MIN, size: 1 },
      { digest: 'o', mtimeMs: NOW - 60 * MIN, size: 2 },
      { digest: 'young', mtimeMs: NOW - MIN, size: 3 },
      { digest: 'edge', mtimeMs: NOW - 10 * MIN, size: 4 },
    ];
    const verdicts = planOrphanBlobs(files, new Set(['x']), NOW, 10 * MIN);
    expect(verdicts).toEqual([
      { target: 'o', reason: 'orphan-blob', bytes: 2 },
      { target: 'edge', reason: 'orphan-blob', bytes: 4 },
    ]);
  });
});

describe('planSweepOldLayout', () => {
  it('takes everything an older store left', () => {
    expect(
      planSweepOldLayout([
        { name: 'old-layout/layout-1-1-abc', bytes: 7 },
        { name: 'unpacked', bytes: 3 },
      ]),
    ).toEqual([
      { target: 'old-layout/layout-1-1-abc', reason: 'old-layout', bytes: 7 },
      { target: 'unpacked', reason: 'old-layout', bytes: 3 },
    ]);
  });
});
