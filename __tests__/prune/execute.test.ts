/**
 * The executor and the post prune step on a real LocalStore: deletions go through removeMany, a
 * blob shared with a kept entry survives, a dry run deletes nothing, an entry that cannot be
 * deleted is a warning, and cleanup-interval is honoured through the store's marker.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PruneConfig } from '../../src/inputs.js';
import { executePlan } from '../../src/prune/execute.js';
import { limitsOf, planPrune } from '../../src/prune/policy.js';
import { PRUNE_MARKER, prunePostStep, renderPruneSummary } from '../../src/prune/post.js';
import { LocalStore } from '../../src/store/index.js';
import { sharedPool } from '../../src/store/pool.js';
import { sha256 } from '../../src/util/bytes.js';

const DAY = 86_400_000;

let base: string;
let store: LocalStore;

beforeEach(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-prune-test-'));
  store = await LocalStore.open(path.join(base, 'store'));
});
afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});
// The store's worker threads otherwise keep jest from exiting.
afterAll(async () => {
  await sharedPool().close();
});

/** Saves an entry of `pkg` holding `files` under the key `k`. */
async function save(k: string, pkg: string, files: Record<string, string>): Promise<void> {
  const out = path.join(base, 'ws', k);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(out, rel)), { recursive: true });
    await fs.writeFile(path.join(out, rel), content);
  }
  await store.save({
    key: k,
    package: pkg,
    version: '1',
    hash: sha256(k),
    platform: 'linux',
    variant: 'release',
    roots: [{ name: 'out', absPath: out }],
  });
}

async function restoredFiles(k: string): Promise<Record<string, string>> {
  const dest = path.join(base, 'restored', k);
  await store.restore(k, [{ name: 'out', absPath: dest }]);
  const out: Record<string, string> = {};
  for (const name of await fs.readdir(dest)) {
    out[name] = await fs.readFile(path.join(dest, name), 'utf8');
  }
  return out;
}

const BIG = 'shared content '.repeat(4000);

function config(over: Partial<PruneConfig> = {}): PruneConfig {
  return {
    maxSizeBytes: null,
    maxAgeMs: null,
    ttl: { contentMs: null },
    keepVersions: 1,
    cleanupIntervalMs: 0,
    ...over,
  };
}

describe('executePlan on a LocalStore', () => {
  it('deletes the planned entries, logs each with its reason, and keeps shared blobs', async () => {
    await save('old', 'a', { 'shared.bin': BIG, 'a.txt': 'only in old' });
    await save('kept', 'b', { 'shared.bin': BIG, 'b.txt': 'only in kept' });
    const now = Date.now() + 1000;
    const plan = planPrune(
      await store.snapshot(),
      {
        maxSizeBytes: null,
        maxAgeMs: 0,
        contentTtlMs: null,
        keepVersions: 0,
        pinnedKeys: ['kept'],
      },
      now,
    );
    expect(plan.deletions.map((d) => [d.key, d.reason])).toEqual([['old', 'max-age']]);
    expect(plan.kept.map((k) => [k.key, k.keptBy])).toEqual([['kept', 'pinned']]);

    const lines: string[] = [];
    const result = await executePlan(store, plan, { label: 'Prune', log: (l) => lines.push(l) });
    expect(result.failed).toEqual([]);
    expect(result.deleted.map((d) => d.key)).toEqual(['old']);
    expect(lines).toEqual([expect.stringMatching(/^Prune: deleted old \(max-age, \d+ B\)$/)]);
    // What the store freed is what the plan said it would: the blob only `old` held.
    expect(result.freedBytes).toBe(plan.bytesBefore - plan.bytesAfter);

    expect(await store.get('old')).toBeUndefined();
    expect(await restoredFiles('kept')).toEqual({ 'b.txt': 'only in kept', 'shared.bin': BIG });
    const after = await store.snapshot();
    expect(after.entries.map((e) => e.key)).toEqual(['kept']);
  });

  it('on a dry run prints the plan and deletes nothing', async () => {
    await save('x', 'a', { 'f.txt': 'x' });
    await save('y', 'b', { 'f.txt': 'y' });
    const plan = planPrune(
      await store.snapshot(),
      { maxSizeBytes: null, maxAgeMs: 0, contentTtlMs: null, keepVersions: 0 },
      Date.now() + 1000,
    );
    const lines: string[] = [];
    const result = await executePlan(store, plan, { dryRun: true, log: (l) => lines.push(l) });
    expect(result).toMatchObject({ dryRun: true, deleted: [], freedBytes: 0 });
    expect(lines).toEqual([
      expect.stringMatching(/^\[dry run\] cache: would delete x \(max-age/),
      expect.stringMatching(/^\[dry run\] cache: would delete y \(max-age/),
    ]);
    expect((await store.snapshot()).entries).toHaveLength(2);
  });

  it('an entry that cannot be deleted is a warning; the rest are deleted', async () => {
    await save('x', 'a', { 'f.txt': 'x' });
    const plan = planPrune(
      await store.snapshot(),
      { maxSizeBytes: null, maxAgeMs: 0, contentTtlMs: null, keepVersions: 0 },
      Date.now() + 1000,
    );
    // Another job removes the entry between planning and executing.
    const ghost = { ...plan.deletions[0]!, key: 'ghost', handle: 'ghost' };
    const warnings: string[] = [];
    const result = await executePlan(
      store,
      { ...plan, deletions: [ghost, ...plan.deletions] },
      { log: () => undefined, warn: (l) => warnings.push(l) },
    );
    expect(result.deleted.map((d) => d.key)).toEqual(['x']);
    expect(result.failed.map((f) => f.deletion.key)).toEqual(['ghost']);
    expect(warnings).toEqual([expect.stringContaining('could not delete ghost')]);
  });
});

describe('prunePostStep', () => {
  it('prunes to the budget, newest of every package kept, this job pinned', async () => {
    for (const pkg of ['a', 'b', 'c']) {
      for (let v = 1; v <= 3; v++) {
        await save(`${pkg}${v}`, pkg, { 'f.bin': `${pkg}${v} `.repeat(2000 * v) });
      }
    }
    const before = await store.snapshot();
    const sizeOf = (k: string): number => {
      const e = before.entries.find((x) => x.key === k)!;
      return e.blobs.reduce((a, d) => a + (before.blobSizes.get(d) ?? 0), 0);
    };
    // Room for the three newest entries and the pinned a1, nothing more.
    const budget = sizeOf('a3') + sizeOf('b3') + sizeOf('c3') + sizeOf('a1');
    const report = await prunePostStep(store, config({ maxSizeBytes: budget }), ['a1']);
    expect(report.status).toBe('pruned');
    const left = (await store.snapshot()).entries.map((e) => e.key).sort();
    expect(left).toEqual(['a1', 'a3', 'b3', 'c3']);
    expect(report.plan!.bytesAfter).toBeLessThanOrEqual(budget);
    expect(report.plan!.kept).toContainEqual({
      key: 'a1',
      wanted: 'size-budget',
      keptBy: 'pinned',
    });

    const summary = renderPruneSummary(report).join('\n');
    expect(summary).toContain('| deleted: size-budget | 5 |');
    expect(summary).toMatch(/`a2`: size-budget/);
    expect(summary).toMatch(/`a1`: size-budget, kept by pinned/);
  });

  it('runs only when cleanup-interval has passed since the last prune', async () => {
    await save('x', 'a', { 'f.txt': 'x' });
    const t0 = Date.now();
    const c = config({ cleanupIntervalMs: DAY, maxAgeMs: 1 });
    expect((await prunePostStep(store, c, [], t0)).status).toBe('pruned');
    expect(await store.readMarker(PRUNE_MARKER)).toBe(t0);
    const skipped = await prunePostStep(store, c, [], t0 + 3_600_000);
    expect(skipped.status).toBe('skipped');
    // A skipped prune is a log line only: the job summary shows no prune section.
    expect(renderPruneSummary(skipped)).toEqual([]);
    expect((await prunePostStep(store, c, [], t0 + DAY)).status).toBe('pruned');
    expect(await store.readMarker(PRUNE_MARKER)).toBe(t0 + DAY);
  });

  it('expires entries by the content TTL but keeps the last version', async () => {
    await save('a1', 'a', { 'f.txt': 'one' });
    await save('a2', 'a', { 'f.txt': 'two' });
    const c = config({ ttl: { contentMs: 7 * DAY } });
    const report = await prunePostStep(store, c, [], Date.now() + 8 * DAY);
    expect(report.plan!.deletions.map((d) => [d.key, d.reason])).toEqual([['a1', 'expired']]);
    expect(report.plan!.kept).toEqual([{ key: 'a2', wanted: 'expired', keptBy: 'keep-versions' }]);
    expect((await store.snapshot()).entries.map((e) => e.key)).toEqual(['a2']);
    expect(limitsOf(c).contentTtlMs).toBe(7 * DAY);
  });
});
