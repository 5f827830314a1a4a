/**
 * Prune in post, through dist/ as the runner runs it: a local store over its size budget is
 * pruned before the save, least recently used first, down to the budget, keeping the newest
 * version of every package and the entries this job uses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import type { StoreSnapshot } from '../../src/store/types.js';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

/** Stored bytes of the union of the given entries' blobs. */
function storedBytes(snap: StoreSnapshot, keys: readonly string[]): number {
  const blobs = new Set(snap.entries.filter((e) => keys.includes(e.key)).flatMap((e) => e.blobs));
  let total = 0;
  for (const b of blobs) total += snap.blobSizes.get(b) ?? 0;
  return total;
}

describe('prune in post', () => {
  let world: World;
  let edit = 0;

  /**
   * Change every file the build produces: a kept constant in the header all units include, and
   * the version (the generated header). No two versions then share content, so pruning one
   * frees its bytes (a version that shares any file with a newer one shares that file's group
   * blob, which stays while the newer version needs it).
   */
  async function changeSources(): Promise<void> {
    edit++;
    await fs.appendFile(
      path.join(world.workspace, 'include', 'clyde_demo.h'),
      `\n__attribute__((used)) static const char clyde_prune_edit_${edit}[] = "${edit}";\n`,
    );
    const makefile = path.join(world.workspace, 'Makefile');
    const text = await fs.readFile(makefile, 'utf8');
    await fs.writeFile(makefile, text.replace(/^VERSION = .*$/m, `VERSION = 1.4.${edit}`));
  }

  async function build(name: string, version: string, extra: Record<string, string> = {}) {
    await changeSources();
    const run = await runDemoJob(world, {
      with: { name, version, remote: 'false', 'cleanup-interval': '1d', ...extra },
    });
    expect(run.posts[0]!.exitCode).toBe(0);
    return run;
  }

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('prunes the store to its budget, keeping the newest version of every package', async () => {
    const alpha1 = (await build('alpha', '1')).main.outputs['cache-key']!;
    const beta1 = (await build('beta', '1')).main.outputs['cache-key']!;
    const alpha2 = (await build('alpha', '2')).main.outputs['cache-key']!;
    const beta2 = (await build('beta', '2')).main.outputs['cache-key']!;

    const store = await LocalStore.open(world.localStore);
    const before = await store.snapshot();
    expect(before.entries.map((e) => e.key).sort()).toEqual([alpha1, alpha2, beta1, beta2].sort());
    const newest = storedBytes(before, [alpha2, beta2]);
    const all = storedBytes(before, [alpha1, alpha2, beta1, beta2]);
    expect(all).toBeGreaterThan(newest);

    // A budget the two newest versions fit in, but not all four.
    const budget = newest + Math.floor((all - newest) / 4);
    const run = await build('gamma', '1', { 'max-size': `${budget}B`, 'cleanup-interval': '0' });
    const post = run.posts[0]!;
    expect(post.summary).toContain('clyde-cache prune');
    expect(post.summary).toMatch(/deleted: size-budget/);

    const after = await (await LocalStore.open(world.localStore)).snapshot();
    const left = after.entries.map((e) => e.key);
    const gamma = run.main.outputs['cache-key']!;
    expect(left.sort()).toEqual([alpha2, beta2, gamma].sort());
    // Before the save, the store was within its budget.
    expect(storedBytes(after, [alpha2, beta2])).toBeLessThanOrEqual(budget);
    // Every blob left is referenced by a remaining entry, and every referenced blob is there.
    const referenced = new Set(after.entries.flatMap((e) => e.blobs));
    expect([...after.blobSizes.keys()].sort()).toEqual([...referenced].sort());
  });

  it('waits for cleanup-interval between prunes', async () => {
    const run = await build('delta', '1', { 'max-size': '1B', 'cleanup-interval': '7d' });
    expect(run.posts[0]!.stdout).toMatch(/Prune: skipped/);
  });
});
