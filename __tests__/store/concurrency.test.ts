/**
 * Several processes on one store: four children saving, restoring (checking every byte) and
 * removing at random lose nothing and corrupt nothing; a lock that stays taken becomes a
 * 'lock timeout' StoreError, and a lock whose holder died is taken over.
 */
import { describe, it, expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../src/store/index.js';
import {
  PAUSE_AT_ENV,
  PAUSE_MARKER_ENV,
  RESUME_FILE_ENV,
} from '../../test-support/store/faults.js';
import {
  bytesFrom,
  checkHealthy,
  contentFor,
  readContent,
  requestFor,
  sameContent,
  writeContent,
} from '../../test-support/store/fixtures.js';
import { lastJson, runChild } from '../../test-support/store/spawn.js';
import { withSandbox } from './helpers.js';

interface Summary {
  saved: number;
  restored: number;
  misses: number;
  removed: number;
  errors: string[];
}

describe('concurrent processes on one store', () => {
  it('four children saving, restoring and removing lose nothing and corrupt nothing', () =>
    withSandbox(async (sb) => {
      const results = await Promise.all(
        [0, 1, 2, 3].map((worker) =>
          runChild({
            op: 'mixed',
            store: sb.store,
            work: path.join(sb.base, `w${worker}`),
            worker,
            iterations: 9,
          }),
        ),
      );
      const summaries = results.map((r) => {
        expect(r.stderr).not.toMatch(/Error/);
        expect(r.code).toBe(0);
        return lastJson<Summary>(r.stdout);
      });
      for (const s of summaries) expect(s.errors).toEqual([]);
      const saved = summaries.reduce((a, s) => a + s.saved, 0);
      const removed = summaries.reduce((a, s) => a + s.removed, 0);
      expect(saved).toBe(36);
      expect(summaries.reduce((a, s) => a + s.restored, 0)).toBeGreaterThan(0);

      const health = await checkHealthy(sb.store, sb.base);
      expect(health.problems).toEqual([]);
      // every save that was not removed is still there
      expect(health.keys).toHaveLength(saved - removed);
      const store = await LocalStore.open(sb.store);
      const report = await store.verify({ repair: true, orphanMinAgeMs: 0 });
      expect(report.ok).toBe(true);
      expect(await store.verify()).toMatchObject({ ok: true, orphanBlobs: [], strayDirs: [] });
      expect((await store.stats()).entries).toBe(saved - removed);
    }));

  it('a lock held too long is a lock timeout; a dead holder’s lock is taken over', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store, { lockTimeoutMs: 300, lockStaleMs: 60_000 });
      const dir = path.join(sb.ws, 'a');
      await writeContent(dir, contentFor('a'));
      await store.save(requestFor('a', dir));

      // a child that stops inside the lock (just before indexing its entry)
      const marker = path.join(sb.base, 'paused');
      const child = spawn(
        process.execPath,
        [
          fileURLToPath(new URL('../../test-support/store/child.js', import.meta.url)),
          JSON.stringify({ op: 'save', store: sb.store, work: sb.base, key: 'b' }),
        ],
        {
          env: { ...process.env, [PAUSE_AT_ENV]: 'before-index', [PAUSE_MARKER_ENV]: marker },
          stdio: 'ignore',
        },
      );
      const exited = new Promise((resolve) => child.on('close', resolve));
      try {
        for (;;) {
          try {
            await fs.access(marker);
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        await expect(store.remove('a')).rejects.toThrow(/lock timeout/);
        await expect(store.remove('a')).rejects.toMatchObject({ name: 'StoreError' });
        // reads take no lock
        expect((await store.get('a'))?.key).toBe('a');
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const recovering = await LocalStore.open(sb.store, {
        lockTimeoutMs: 20_000,
        lockStaleMs: 2_000,
      });
      expect((await recovering.removeMany(['a'])).removed).toEqual(['a']);
      const health = await checkHealthy(sb.store, sb.base);
      expect(health).toEqual({ keys: [], problems: [] });
    }));
});

describe('a save whose reused content is removed before its commit', () => {
  /** Small files (grouped): 'b' changes one of 'a', 'b+' adds one to them. */
  function smallFiles(version: string): Record<string, Buffer> {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) files[`small/f${i}.txt`] = bytesFrom(`small-${i}`, 900 + i);
    files['small/changed.txt'] = Buffer.from(`version ${version === 'b+' ? 'a' : version}\n`);
    if (version === 'b+') files['small/added.txt'] = Buffer.from('added\n');
    files['big.bin'] = bytesFrom(`big-${version}`, 100_000);
    return files;
  }

  // 'b': A's group holds a file B lacks, so B cannot rebuild it and saves again without reuse.
  // 'b+': B holds every file of A's group, so the group is rebuilt from B's files.
  it.each([
    ['b', true],
    ['b+', false],
  ])('lands anyway (%s), from the saved files, and restores byte-identically', (b, again) =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const dirA = path.join(sb.ws, 'a');
      await writeContent(dirA, smallFiles('a'));
      await store.save(requestFor('a', dirA));
      const dirB = path.join(sb.ws, 'b');
      await writeContent(dirB, smallFiles(b));

      const marker = path.join(sb.base, 'paused');
      const resume = path.join(sb.base, 'resume');
      const child = runChild(
        { op: 'save', store: sb.store, work: sb.base, key: 'b', dir: dirB },
        { [PAUSE_AT_ENV]: 'after-blobs', [PAUSE_MARKER_ENV]: marker, [RESUME_FILE_ENV]: resume },
      );
      while (
        !(await fs.access(marker).then(
          () => true,
          () => false,
        ))
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      // A prune in another job removes A, and with it the group B's save reused.
      const removed = await store.removeMany(['a']);
      expect(removed.removed).toEqual(['a']);
      expect(removed.freedBytes).toBeGreaterThan(0);
      await fs.writeFile(resume, '');
      const r = await child;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.includes('saving again without reusing stored groups')).toBe(again);

      const after = await LocalStore.open(sb.store);
      expect((await after.list()).map((e) => e.key)).toEqual(['b']);
      const dest = path.join(sb.base, 'restored', 'out');
      await after.restore('b', [{ name: 'out', absPath: dest }]);
      expect(sameContent(await readContent(dest), smallFiles(b))).toBe(true);
      expect((await after.verify({ deep: true })).problems).toEqual([]);
    }),
  );
});
