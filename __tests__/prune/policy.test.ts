/** The prune policy's tables: each rule alone, then in combination. Pure: no files, no clock. */
import { describe, expect, it } from '@jest/globals';
import { planPrune, pruneDue, totalsByReason } from '../../src/prune/policy.js';
import type {
  DeleteReason,
  KeepReason,
  PruneEntry,
  PruneLimits,
  PruneSnapshot,
} from '../../src/prune/types.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 5, 1);

interface E {
  key: string;
  pkg?: string;
  platform?: string;
  variant?: string;
  /** Days ago. */
  created: number;
  used?: number;
  size?: number;
  blobs?: string[];
  ref?: string;
  pr?: 'open' | 'closed' | 'merged';
  foreign?: boolean;
  id?: number;
  /** A runner-cache layer: its base's key. */
  base?: string;
}

let nextId = 1;
function entry(e: E): PruneEntry {
  const ref = e.ref ?? (e.pr !== undefined ? `refs/pull/${e.id ?? 1}/merge` : undefined);
  return {
    key: e.key,
    package: e.pkg ?? 'app',
    version: '1',
    platform: e.platform ?? 'linux',
    variant: e.variant ?? 'release',
    sizeBytes: e.size ?? 100,
    createdAt: NOW - e.created * DAY,
    lastAccessAt: NOW - (e.used ?? e.created) * DAY,
    blobs: e.blobs ?? [],
    ...(ref !== undefined
      ? {
          remote: {
            id: e.id ?? nextId++,
            ref,
            ...(e.pr !== undefined ? { pr: { number: e.id ?? 1, state: e.pr } } : {}),
            ...(e.foreign ? { foreign: true } : {}),
            ...(e.base !== undefined ? { base: e.base } : {}),
          },
        }
      : {}),
  };
}

const NO_LIMITS: PruneLimits = {
  maxSizeBytes: null,
  maxAgeMs: null,
  contentTtlMs: null,
  keepVersions: 0,
};

interface Case {
  name: string;
  entries: E[];
  limits: Partial<PruneLimits>;
  /** Blob sizes (local store); absent: entries cost their size. */
  blobs?: Record<string, number>;
  deleted: [string, DeleteReason][];
  kept?: [string, DeleteReason, KeepReason][];
  bytesAfter?: number;
  budgetMet?: boolean;
}

const cases: Case[] = [
  {
    name: 'no limits: nothing happens',
    entries: [{ key: 'a', created: 400 }],
    limits: {},
    deleted: [],
  },
  {
    name: 'expired: unused for longer than the content TTL',
    entries: [
      { key: 'a', pkg: 'a', created: 30, used: 8 },
      { key: 'b', pkg: 'b', created: 30, used: 6 },
    ],
    limits: { contentTtlMs: 7 * DAY },
    deleted: [['a', 'expired']],
  },
  {
    name: 'expired: exactly at the TTL is not older than it',
    entries: [{ key: 'a', created: 7 }],
    limits: { contentTtlMs: 7 * DAY },
    deleted: [],
  },
  {
    name: 'max-age: created longer ago, however recently used',
    entries: [
      { key: 'a', pkg: 'a', created: 31, used: 0 },
      { key: 'b', pkg: 'b', created: 29 },
    ],
    limits: { maxAgeMs: 30 * DAY },
    deleted: [['a', 'max-age']],
  },
  {
    name: 'keep-versions wins over max-age: the newest of the package stays',
    entries: [
      { key: 'old', created: 60 },
      { key: 'newer', created: 40 },
      { key: 'other-pkg', pkg: 'lib', created: 50 },
    ],
    limits: { maxAgeMs: 30 * DAY, keepVersions: 1 },
    deleted: [['old', 'max-age']],
    kept: [
      ['newer', 'max-age', 'keep-versions'],
      ['other-pkg', 'max-age', 'keep-versions'],
    ],
  },
  {
    name: 'keep-versions counts per package, platform and variant',
    entries: [
      { key: 'l1', platform: 'linux', created: 50 },
      { key: 'l2', platform: 'linux', created: 40 },
      { key: 'w1', platform: 'windows', created: 50 },
      { key: 'd1', variant: 'debug', created: 50 },
    ],
    limits: { maxAgeMs: DAY, keepVersions: 1 },
    deleted: [['l1', 'max-age']],
    kept: [
      ['d1', 'max-age', 'keep-versions'],
      ['l2', 'max-age', 'keep-versions'],
      ['w1', 'max-age', 'keep-versions'],
    ],
  },
  {
    name: 'keep-versions 2 keeps the two newest',
    entries: [
      { key: 'a', created: 30 },
      { key: 'b', created: 20 },
      { key: 'c', created: 10 },
    ],
    limits: { maxAgeMs: DAY, keepVersions: 2 },
    deleted: [['a', 'max-age']],
    kept: [
      ['b', 'max-age', 'keep-versions'],
      ['c', 'max-age', 'keep-versions'],
    ],
  },
  {
    name: 'keep-versions 0 lets every old entry go',
    entries: [
      { key: 'a', created: 30 },
      { key: 'b', created: 20 },
    ],
    limits: { maxAgeMs: DAY, keepVersions: 0 },
    deleted: [
      ['a', 'max-age'],
      ['b', 'max-age'],
    ],
  },
  {
    name: 'pinned keys are never deleted, whatever the rule',
    entries: [
      { key: 'restored', created: 90, used: 90 },
      { key: 'other', pkg: 'lib', created: 90, used: 90 },
    ],
    limits: { contentTtlMs: DAY, pinnedKeys: ['restored'] },
    deleted: [['other', 'expired']],
    kept: [['restored', 'expired', 'pinned']],
  },
  {
    name: 'size-budget: least recently used first, down to the budget',
    entries: [
      { key: 'a', pkg: 'a', created: 10, used: 3, size: 100 },
      { key: 'b', pkg: 'b', created: 10, used: 5, size: 100 },
      { key: 'c', pkg: 'c', created: 10, used: 1, size: 100 },
      { key: 'd', pkg: 'd', created: 10, used: 4, size: 100 },
    ],
    limits: { maxSizeBytes: 200 },
    deleted: [
      ['b', 'size-budget'],
      ['d', 'size-budget'],
    ],
    bytesAfter: 200,
  },
  {
    name: 'size-budget never takes the last version of a package',
    entries: [
      { key: 'a1', pkg: 'a', created: 10, used: 9, size: 100 },
      { key: 'a2', pkg: 'a', created: 5, used: 5, size: 100 },
      { key: 'b1', pkg: 'b', created: 10, used: 8, size: 100 },
    ],
    limits: { maxSizeBytes: 50, keepVersions: 1 },
    deleted: [['a1', 'size-budget']],
    kept: [
      ['b1', 'size-budget', 'keep-versions'],
      ['a2', 'size-budget', 'keep-versions'],
    ],
    bytesAfter: 200,
    budgetMet: false,
  },
  {
    name: 'expired go first; LRU only for what is left over the budget',
    entries: [
      { key: 'expired', pkg: 'x', created: 20, used: 10, size: 300 },
      { key: 'lru1', pkg: 'a', created: 5, used: 5, size: 100 },
      { key: 'lru2', pkg: 'b', created: 5, used: 4, size: 100 },
      { key: 'fresh', pkg: 'c', created: 1, used: 0, size: 100 },
    ],
    limits: { contentTtlMs: 7 * DAY, maxSizeBytes: 200 },
    deleted: [
      ['expired', 'expired'],
      ['lru1', 'size-budget'],
    ],
    bytesAfter: 200,
  },
  {
    name: 'a referenced blob survives the deletion of one of its entries',
    blobs: { shared: 1000, onlyOld: 10, onlyNew: 20 },
    entries: [
      { key: 'old', created: 60, blobs: ['shared', 'onlyOld'] },
      { key: 'new', created: 1, blobs: ['shared', 'onlyNew'] },
    ],
    limits: { maxAgeMs: 30 * DAY, keepVersions: 1 },
    deleted: [['old', 'max-age']],
    bytesAfter: 1020,
  },
  {
    name: 'a blob goes with the last entry that references it',
    blobs: { shared: 1000, x: 1, y: 2 },
    entries: [
      { key: 'a', pkg: 'a', created: 60, blobs: ['shared', 'x'] },
      { key: 'b', pkg: 'b', created: 50, blobs: ['shared', 'y'] },
    ],
    limits: { maxAgeMs: 30 * DAY },
    deleted: [
      ['a', 'max-age'],
      ['b', 'max-age'],
    ],
    bytesAfter: 0,
  },
  {
    name: 'referenced: LRU passes over an entry whose content a kept entry holds',
    blobs: { big: 1000, small: 10, other: 500 },
    entries: [
      { key: 'view', created: 10, used: 9, blobs: ['big'] },
      { key: 'newest', created: 1, used: 1, blobs: ['big', 'small'] },
      { key: 'lib', pkg: 'lib', created: 10, used: 8, blobs: ['other'] },
      { key: 'lib2', pkg: 'lib', created: 2, used: 2, blobs: ['small'] },
    ],
    limits: { maxSizeBytes: 1010, keepVersions: 1 },
    deleted: [['lib', 'size-budget']],
    kept: [['view', 'size-budget', 'referenced']],
    bytesAfter: 1010,
  },
  {
    name: 'closed and merged pull requests go; open ones and branches stay',
    entries: [
      { key: 'k7', pkg: 'p7', created: 1, pr: 'open', id: 7 },
      { key: 'k8', pkg: 'p8', created: 1, pr: 'closed', id: 8 },
      { key: 'k9', pkg: 'p9', created: 1, pr: 'merged', id: 9 },
      { key: 'km', pkg: 'pm', created: 1, ref: 'refs/heads/main' },
    ],
    limits: { keepVersions: 1 },
    deleted: [
      ['k8', 'closed-pr'],
      ['k9', 'closed-pr'],
    ],
  },
  {
    name: 'keep-versions does not count entries of closed pull requests',
    entries: [
      { key: 'main-old', created: 10, ref: 'refs/heads/main' },
      { key: 'pr-new', created: 1, pr: 'closed', id: 8 },
    ],
    limits: { maxAgeMs: 5 * DAY, keepVersions: 1 },
    deleted: [['pr-new', 'closed-pr']],
    kept: [['main-old', 'max-age', 'keep-versions']],
  },
  {
    name: 'superseded: older entries of a group on the same ref; other refs keep theirs',
    entries: [
      { key: 'm1', created: 3, ref: 'refs/heads/main' },
      { key: 'm2', created: 2, ref: 'refs/heads/main' },
      { key: 'm3', created: 1, ref: 'refs/heads/main' },
      { key: 'f1', created: 5, ref: 'refs/heads/feature' },
      { key: 'w1', created: 3, platform: 'windows', ref: 'refs/heads/main' },
    ],
    limits: { keepVersions: 1 },
    deleted: [
      ['m1', 'superseded'],
      ['m2', 'superseded'],
    ],
  },
  {
    name: 'superseded yields to keep-versions 2',
    entries: [
      { key: 'm1', created: 3, ref: 'refs/heads/main' },
      { key: 'm2', created: 2, ref: 'refs/heads/main' },
      { key: 'm3', created: 1, ref: 'refs/heads/main' },
    ],
    limits: { keepVersions: 2 },
    deleted: [['m1', 'superseded']],
    kept: [['m2', 'superseded', 'keep-versions']],
  },
  {
    name: 'foreign keys: never superseded or protected, but TTL and budget apply',
    entries: [
      { key: 'node-1', created: 3, ref: 'refs/heads/main', foreign: true, size: 100 },
      { key: 'node-2', created: 2, ref: 'refs/heads/main', foreign: true, size: 100 },
      { key: 'old-foreign', created: 20, used: 20, ref: 'refs/heads/main', foreign: true },
    ],
    limits: { keepVersions: 1, contentTtlMs: 7 * DAY, maxSizeBytes: 100 },
    deleted: [
      ['old-foreign', 'expired'],
      ['node-1', 'size-budget'],
    ],
    bytesAfter: 100,
  },
  {
    name: 'one reason per entry: expired wins over max-age, closed-pr and superseded',
    entries: [
      { key: 'a', created: 40, used: 40, pr: 'closed', id: 3 },
      { key: 'b', created: 40, used: 1, ref: 'refs/heads/main' },
      { key: 'c', created: 1, used: 1, ref: 'refs/heads/main' },
    ],
    limits: { contentTtlMs: 7 * DAY, maxAgeMs: 30 * DAY },
    deleted: [
      ['a', 'expired'],
      ['b', 'max-age'],
    ],
  },
  {
    name: 'a runner-cache base stays while a layer of it lives, whatever rule wants it gone',
    entries: [
      { key: 'base', pkg: 'a', created: 40, used: 40, ref: 'refs/heads/main', size: 500 },
      { key: 'zlayer', pkg: 'a', created: 1, ref: 'refs/heads/main', base: 'base', size: 50 },
      { key: 'other', pkg: 'b', created: 2, used: 2, ref: 'refs/heads/main', size: 500 },
    ],
    limits: { contentTtlMs: 7 * DAY, maxSizeBytes: 600 },
    deleted: [['other', 'size-budget']],
    kept: [['base', 'expired', 'base-of-layer']],
    bytesAfter: 550,
  },
  {
    name: 'a base whose only layer goes first goes too',
    entries: [
      { key: 'base', pkg: 'a', created: 40, used: 40, ref: 'refs/heads/main', size: 500 },
      { key: 'alayer', pkg: 'a', created: 39, used: 39, ref: 'refs/heads/main', base: 'base' },
    ],
    limits: { contentTtlMs: 7 * DAY },
    deleted: [
      ['alayer', 'expired'],
      ['base', 'expired'],
    ],
  },
];

function snapshotOf(c: Case): PruneSnapshot {
  nextId = 1;
  const entries = c.entries.map(entry);
  return c.blobs ? { entries, blobSizes: new Map(Object.entries(c.blobs)) } : { entries };
}

describe('planPrune', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const plan = planPrune(snapshotOf(c), { ...NO_LIMITS, ...c.limits }, NOW);
    expect(plan.deletions.map((d) => [d.key, d.reason])).toEqual(c.deleted);
    expect(plan.kept.map((k) => [k.key, k.wanted, k.keptBy])).toEqual(c.kept ?? []);
    if (c.bytesAfter !== undefined) expect(plan.bytesAfter).toBe(c.bytesAfter);
    expect(plan.budgetMet).toBe(c.budgetMet ?? true);
    // Bookkeeping holds in every case.
    expect(plan.entriesAfter).toBe(plan.entriesBefore - plan.deletions.length);
    expect(plan.bytesBefore - plan.bytesAfter).toBe(
      plan.deletions.reduce((a, d) => a + d.freedBytes, 0),
    );
  });

  it('is deterministic whatever the input order', () => {
    const c = cases.find((x) => x.name.startsWith('size-budget: least'))!;
    const snap = snapshotOf(c);
    const a = planPrune(snap, { ...NO_LIMITS, ...c.limits }, NOW);
    const b = planPrune(
      { entries: [...snap.entries].reverse() },
      { ...NO_LIMITS, ...c.limits },
      NOW,
    );
    expect(b).toEqual(a);
  });

  it('addresses runner-cache deletions by cache id and local ones by key', () => {
    const plan = planPrune(
      {
        entries: [
          entry({ key: 'remote-key', created: 1, pr: 'closed', id: 42 }),
          entry({ key: 'local-key', pkg: 'x', created: 100 }),
        ],
      },
      { ...NO_LIMITS, maxAgeMs: DAY },
      NOW,
    );
    expect(plan.deletions.map((d) => [d.handle, d.ref])).toEqual([
      ['local-key', undefined],
      ['42', 'refs/pull/42/merge'],
    ]);
  });

  it('totals deletions by reason', () => {
    const c = cases.find((x) => x.name.startsWith('expired go first'))!;
    const plan = planPrune(snapshotOf(c), { ...NO_LIMITS, ...c.limits }, NOW);
    expect(totalsByReason(plan)).toEqual([
      { reason: 'expired', entries: 1, bytes: 300 },
      { reason: 'size-budget', entries: 1, bytes: 100 },
    ]);
  });
});

describe('pruneDue (cleanup-interval)', () => {
  const table: [string, number | undefined, number, boolean][] = [
    ['never pruned', undefined, DAY, true],
    ['interval 0: every run', NOW, 0, true],
    ['an hour ago, interval 1d', NOW - 3_600_000, DAY, false],
    ['exactly one interval ago', NOW - DAY, DAY, true],
    ['two days ago', NOW - 2 * DAY, DAY, true],
  ];
  it.each(table)('%s', (_n, last, interval, due) => {
    expect(pruneDue(last, interval, NOW)).toBe(due);
  });
});
