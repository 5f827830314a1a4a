/**
 * Crash safety: a save or a removal killed with SIGKILL at each pause point of
 * test-support/store/faults.ts leaves a store that opens, verifies and restores every entry it lists;
 * the next open removes the dead process's tmp/ leftovers and a later lock taker recovers the
 * lock it held.
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import type { PausePoint } from '../../src/store/types.js';
import {
  checkHealthy,
  contentFor,
  readContent,
  requestFor,
  sameContent,
  writeContent,
} from '../../test-support/store/fixtures.js';
import { killAt } from '../../test-support/store/spawn.js';
import { withSandbox, type Sandbox } from './helpers.js';

async function seed(sb: Sandbox, keys: readonly string[]): Promise<LocalStore> {
  const store = await LocalStore.open(sb.store, { lockStaleMs: 2_000 });
  for (const key of keys) {
    const dir = path.join(sb.ws, key);
    await writeContent(dir, contentFor(key));
    await store.save(requestFor(key, dir));
  }
  return store;
}

const SAVE_POINTS: PausePoint[] = [
  'after-blobs',
  'after-artifact-tmp',
  'before-rename',
  'before-index',
];

describe('a save killed with SIGKILL', () => {
  for (const point of SAVE_POINTS) {
    it(`at ${point} leaves a store that opens, verifies and restores; the key can be saved again`, () =>
      withSandbox(async (sb) => {
        await seed(sb, ['base-1', 'base-2']);
        const job = {
          op: 'save',
          store: sb.store,
          work: path.join(sb.base, 'child'),
          key: 'crashed',
        };
        await killAt(job, point, path.join(sb.base, 'paused'));

        const store = await LocalStore.open(sb.store, { lockStaleMs: 2_000 });
        // the dead child's staging and temp files are gone
        expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
        const health = await checkHealthy(sb.store, sb.base);
        expect(health.problems).toEqual([]);
        expect(health.keys).toEqual(['base-1', 'base-2']);

        // saving the key again works, taking over a lock the child may have died holding
        const dir = path.join(sb.ws, 'crashed');
        await writeContent(dir, contentFor('crashed'));
        expect((await store.save(requestFor('crashed', dir))).created).toBe(true);
        const dest = path.join(sb.base, 'restored', 'out');
        await store.restore('crashed', [{ name: 'out', absPath: dest }]);
        expect(sameContent(await readContent(dest), contentFor('crashed'))).toBe(true);

        const repaired = await store.verify({ repair: true, orphanMinAgeMs: 0 });
        expect(repaired.ok).toBe(true);
        const after = await store.verify();
        expect(after).toMatchObject({ ok: true, orphanBlobs: [], strayDirs: [] });
        expect((await checkHealthy(sb.store, sb.base)).keys).toEqual([
          'base-1',
          'base-2',
          'crashed',
        ]);
      }));
  }

  it('a removal killed after its index update leaves garbage that verify collects', () =>
    withSandbox(async (sb) => {
      await seed(sb, ['keep', 'gone']);
      const job = { op: 'remove', store: sb.store, work: sb.base, keys: ['gone'] };
      await killAt(job, 'after-remove-index', path.join(sb.base, 'paused'));

      const health = await checkHealthy(sb.store, sb.base);
      expect(health.problems).toEqual([]);
      expect(health.keys).toEqual(['keep']);
      const store = await LocalStore.open(sb.store, { lockStaleMs: 2_000 });
      const report = await store.verify();
      expect(report.strayDirs).toHaveLength(1);
      // the removed entry's own blobs (its .txt and data.bin) are unreferenced now
      expect(report.orphanBlobs).toHaveLength(2);
      await store.verify({ repair: true, orphanMinAgeMs: 0 });
      expect(await store.verify()).toMatchObject({ ok: true, orphanBlobs: [], strayDirs: [] });
      expect((await checkHealthy(sb.store, sb.base)).problems).toEqual([]);
    }));
});
