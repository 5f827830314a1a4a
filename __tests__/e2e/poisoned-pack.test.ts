/**
 * A remote entry whose pack is well formed but is not the entry asked for (issue 11, items 1
 * and 2). Served by the loopback service under the key the job looks up, through dist/:
 * - a pack for key K2 whose meta claims the package, version and hash of the local entry K1
 *   must not take K1's directory (before: K1 could no longer be restored);
 * - a pack holding another key, created "in 2099", must not reach the local store, where the
 *   local fallback would then restore it (before: its planted file reached the workspace).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheVersion } from '../../src/remote/twirp.js';
import { LocalStore } from '../../src/store/index.js';
import { editPackMeta } from '../../test-support/store/fixtures.js';
import { createWorld, git, runDemoJob, type World } from '../../test-support/world.js';

function commitEdit(world: World, text: string): void {
  execFileSync('sh', ['-c', `printf '%s\\n' "${text}" >> src/words.c`], { cwd: world.workspace });
  git(world.workspace, 'commit', '-qam', text);
}

describe('a remote pack that is not the entry asked for', () => {
  let world: World;
  let k1 = '';

  beforeAll(async () => {
    world = await createWorld();
    const first = await runDemoJob(world);
    k1 = first.main.outputs['cache-key'] ?? '';
    expect(k1).toMatch(/^clyde-demo-/);
    expect(first.posts[0]?.summary).toMatch(/saved/);
  });
  afterAll(async () => {
    await world.close();
  });

  /** The key the next job will ask for, learnt without saving anything. */
  async function nextKey(): Promise<string> {
    const probe = await runDemoJob(world, { with: { save: 'never', 'lookup-only': 'true' } });
    return probe.main.outputs['cache-key'] ?? '';
  }

  async function exportedPack(key: string): Promise<Buffer> {
    const store = await LocalStore.open(world.localStore);
    const file = path.join(world.root, `export-${Date.now()}.pack`);
    await store.exportPack(key, file);
    const bytes = await fs.readFile(file);
    await fs.rm(file);
    return bytes;
  }

  function seed(key: string, pack: Buffer): void {
    world.service.reset();
    world.service.seedEntry({ key, version: cacheVersion(), data: pack });
  }

  it("a pack claiming another entry's package, version and hash leaves that entry whole", async () => {
    commitEdit(world, '/* edit 1 */');
    const k2 = await nextKey();
    expect(k2).not.toBe(k1);
    const k1Meta = await (await LocalStore.open(world.localStore)).get(k1);
    const pack = editPackMeta(await exportedPack(k1), (m) => {
      m['key'] = k2;
      m['package'] = k1Meta?.package;
      m['version'] = k1Meta?.version;
      m['hash'] = k1Meta?.hash;
    });
    seed(k2, pack);

    const run = await runDemoJob(world, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    const warned = run.main.annotations.map((a) => a.message).join('\n');
    expect(warned).toMatch(/Runner cache entry .* could not be restored/);
    // The local fallback restored K1 itself, and K1 is still whole in the store.
    expect(run.main.outputs).toMatchObject({ tier: 'local', 'matched-key': k1 });
    const store = await LocalStore.open(world.localStore);
    expect((await store.get(k1))?.key).toBe(k1);
    expect(await store.get(k2)).toBeUndefined();
    const report = await store.verify();
    expect(report.problems).toEqual([]);
    const dest = path.join(world.root, 'k1-check');
    await store.restore(k1, [{ name: 'out', absPath: path.join(dest, 'out') }]);
    expect((await fs.readdir(path.join(dest, 'out'))).length).toBeGreaterThan(0);
  });

  it('a pack holding another key never reaches the store or the workspace', async () => {
    commitEdit(world, '/* edit 2 */');
    const k3 = await nextKey();
    // A planted tree saved under a key of the same prefix (a fallback candidate), "from 2099".
    const prefix = k1.slice(0, k1.lastIndexOf('-') + 1);
    const hash = 'f'.repeat(64);
    const evilKey = `${prefix}${hash}`;
    const planted = path.join(world.root, 'planted', 'out');
    await fs.mkdir(planted, { recursive: true });
    await fs.writeFile(path.join(planted, 'planted.txt'), 'pwned\n');
    const scratch = await LocalStore.open(path.join(world.root, 'scratch-store'));
    const k1Meta = await (await LocalStore.open(world.localStore)).get(k1);
    await scratch.save({
      key: evilKey,
      package: k1Meta?.package ?? 'demo',
      version: k1Meta?.version ?? '',
      hash,
      platform: k1Meta?.platform ?? '',
      variant: k1Meta?.variant ?? '',
      roots: [{ name: 'out', absPath: planted }],
    });
    const file = path.join(world.root, 'evil.pack');
    await scratch.exportPack(evilKey, file);
    const pack = editPackMeta(await fs.readFile(file), (m) => {
      m['createdAt'] = '2099-01-01T00:00:00.000Z';
    });
    seed(k3, pack);

    const run = await runDemoJob(world, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    const warned = run.main.annotations.map((a) => a.message).join('\n');
    expect(warned).toMatch(/the pack holds '.*', not '.*'/);
    expect(run.main.outputs).toMatchObject({ tier: 'local', 'matched-key': k1 });
    await expect(fs.access(path.join(world.workspace, 'out', 'planted.txt'))).rejects.toThrow();
    const store = await LocalStore.open(world.localStore);
    expect(await store.get(evilKey)).toBeUndefined();
    // Nothing of the refused pack was stored: its one blob is not in the store.
    const report = await store.verify();
    expect(report.orphanBlobs).toEqual([]);
  });
});
