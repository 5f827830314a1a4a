/**
 * What the fast paths of issue 4 rely on, checked as behaviour (never timed): the 1%-changed
 * save works from the stat cache alone, restores record what they wrote, and saved mtimes are
 * restored.
 */
import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { requestFor } from '../../test-support/store/fixtures.js';
import type { SaveStats } from '../../src/store/types.js';
import { AT, decodeTable, NUMS } from '../../src/store/table.js';
import { snapshotTree, withSandbox, writeTree, type Sandbox } from './helpers.js';

const request = requestFor;

const text = (n: number, seed: string): string =>
  Array.from({ length: n }, (_, i) => `${seed} line ${i}\n`).join('');

function tree(seed: string): Record<string, string> {
  const files: Record<string, string> = { 'big.txt': text(20_000, `${seed} big`) };
  for (let i = 0; i < 50; i++) files[`lib/m${i % 5}/f${i}.js`] = text(10 + i, `${seed} ${i}`);
  return files;
}

/** Entry v1 saved from `out` and restored into `ws`. */
async function savedAndRestored(
  sb: Sandbox,
): Promise<{ out: string; store: LocalStore; ws: string }> {
  const out = path.join(sb.ws, 'out');
  await writeTree(out, tree('v1'));
  const store = await LocalStore.open(sb.store);
  await store.save(request('v1', out));
  const ws = path.join(sb.base, 'ws2', 'out');
  await store.restore('v1', [{ name: 'out', absPath: ws }]);
  return { out, store, ws };
}

describe('fast paths', () => {
  it('the 1%-changed save needs only the stat cache, not the previous manifest', () =>
    withSandbox(async (sb) => {
      const { out, store, ws } = await savedAndRestored(sb);
      await new Promise((r) => setTimeout(r, 60));
      await fs.appendFile(path.join(ws, 'lib/m2/f7.js'), 'changed\n');
      const expected = await snapshotTree(ws);

      // The previous entry's manifest becomes unreadable: the save must not need it.
      const artifact = path.join(sb.store, 'pkg', '1.0.0', request('v1', out).hash, 'artifact');
      await fs.writeFile(artifact, '{ not json');
      let stats: SaveStats | undefined;
      await store.save(request('v2', ws, { basis: 'v1', onStats: (s: SaveStats) => (stats = s) }));
      expect(stats).toMatchObject({ files: 51, reused: 50, read: 1 });

      const check = path.join(sb.base, 'check', 'out');
      await (await LocalStore.open(sb.store)).restore('v2', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(expected);
      expect((await store.verify({ deep: true })).corruptBlobs).toEqual([]);
    }));

  it('files added, removed and renamed in a directory: only the new names are read', () =>
    withSandbox(async (sb) => {
      const { store, ws } = await savedAndRestored(sb);
      // lib/m1 holds f1, f6, f11, ...: one name before all of them, one removed, one renamed.
      await fs.writeFile(path.join(ws, 'lib/m1/a-first.js'), 'new\n');
      await fs.rm(path.join(ws, 'lib/m1/f6.js'));
      await fs.rename(path.join(ws, 'lib/m1/f11.js'), path.join(ws, 'lib/m1/z-last.js'));
      const expected = await snapshotTree(ws);
      let stats: SaveStats | undefined;
      await store.save(request('v2', ws, { basis: 'v1', onStats: (s: SaveStats) => (stats = s) }));
      // 51 files: 1 added, 1 removed; the renamed one is read again under its new name.
      expect(stats).toMatchObject({ files: 51, reused: 49, read: 2 });
      const check = path.join(sb.base, 'check', 'out');
      await store.restore('v2', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(expected);
    }));

  it('a damaged stat cache only makes the save read more', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, tree('v1'));
      await new Promise((r) => setTimeout(r, 60)); // past the stat cache's racy window
      const store = await LocalStore.open(sb.store);
      await store.save(request('v1', out));
      const dir = path.join(sb.store, 'statcache');
      const files = await fs.readdir(dir, { recursive: true });
      const file = path.join(dir, files.find((f) => f.endsWith('.bin')) as string);
      const good = await fs.readFile(file);
      // A table (table.ts): after the head, header and names come 32 bytes of digest per row,
      // then NUMS float64 per row (kind first, then mode, size, ...).
      const t = decodeTable(good);
      const [m2] = t.dirs[0]?.get('lib/m2') ?? [-1]; // the first row of lib/m2: a file
      const big = t.names.indexOf('big.txt');
      expect([m2 >= 0, big >= 0]).toEqual([true, true]);
      const numsAt = t.nums.byteOffset - t.body.byteOffset;
      const digestsAt = t.digestsAt;
      const damage: [string, number, (b: Buffer) => Buffer][] = [
        ['truncated', 51, (b) => b.subarray(0, b.length - 1)],
        ['one byte more', 51, (b) => Buffer.concat([b, Buffer.alloc(1)])],
        ['unknown version', 51, (b) => (b.writeUInt32LE(9, 4), b)],
        ['header not JSON', 51, (b) => (b.write('!', 16), b)],
        [
          'a size that is not a number',
          1,
          (b) => (b.writeDoubleLE(Number.NaN, numsAt + (m2 * NUMS + AT.size) * 8), b),
        ],
        // big.txt has a blob of its own. Its stat still matches, but the digest given is not
        // in the store, so the file is read. (A wrong digest for a grouped file comes with a
        // location in a group that is there: restore's verification catches that one.)
        [
          'a digest changed',
          1,
          (b) => (b.writeUInt8(b.readUInt8(digestsAt + big * 32) ^ 1, digestsAt + big * 32), b),
        ],
      ];
      // The stat cache of a save is a hard link to its entry's artifact.
      const artifact = path.join(sb.store, 'pkg', '1.0.0', request('v1', out).hash, 'artifact');
      expect((await fs.stat(file)).ino).toBe((await fs.stat(artifact)).ino);
      for (const [i, [what, read, spoil]] of damage.entries()) {
        // (Replaced, not written through: the artifact stays as it is.)
        await fs.rm(file);
        await fs.writeFile(file, spoil(Buffer.from(good)));
        let stats: SaveStats | undefined;
        await store.save(
          request(`v2-${i}`, out, { basis: 'v1', onStats: (s: SaveStats) => (stats = s) }),
        );
        expect([what, stats?.read, stats?.reused]).toEqual([what, read, 51 - read]);
      }
      const check = path.join(sb.base, 'check', 'out');
      await store.restore('v2-5', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(await snapshotTree(out));
      // Removing an entry removes its stat caches, and only its own.
      const v1 = path.join(dir, createHash('sha256').update('v1').digest('hex'));
      const others = (await fs.readdir(dir)).length - 1;
      expect((await fs.readdir(v1)).length).toBe(1);
      await store.removeMany(['v1']);
      expect(existsSync(v1)).toBe(false);
      expect((await fs.readdir(dir)).length).toBe(others);
    }));

  it('a file changed right after a restore is read again', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, tree('v1'));
      const store = await LocalStore.open(sb.store);
      await store.save(request('v1', out));
      const ws = path.join(sb.base, 'ws-copy', 'out');
      await store.restore('v1', [{ name: 'out', absPath: ws }]);
      // No waiting: restore returns only once a change gets a later mtime than it recorded.
      const f = path.join(ws, 'lib/m0/f5.js');
      await fs.rm(f, { force: true });
      await fs.writeFile(f, text(15, 'v1 5').replace('line 3', 'line X'));
      let stats: SaveStats | undefined;
      await store.save(
        request('v2-copy', ws, { basis: 'v1', onStats: (s: SaveStats) => (stats = s) }),
      );
      expect(stats?.read).toBe(1);
    }));

  it('restores saved mtimes', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, tree('v1'));
      const when = 1_600_000_000.25;
      await fs.utimes(path.join(out, 'big.txt'), when, when);
      await fs.utimes(path.join(out, 'lib/m4/f9.js'), when, when);
      const store = await LocalStore.open(sb.store);
      await store.save(request('v1', out));
      const dest = path.join(sb.base, 'mt', 'out');
      await store.restore('v1', [{ name: 'out', absPath: dest }], { mtimes: true });
      for (const f of ['big.txt', 'lib/m4/f9.js']) {
        const ms = (await fs.stat(path.join(dest, f))).mtimeMs;
        expect([f, Math.abs(ms - when * 1000) < 1]).toEqual([f, true]);
      }
    }));
});
