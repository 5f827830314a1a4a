/**
 * A pack is taken (restored, then adopted: run/restore.ts) only as the entry it was asked for
 * (issue 11, items 1 and 2): its key must be that entry's, its hash the key's own, and a commit
 * never replaces a directory the index gives to another entry. Nothing of a refused pack
 * reaches the store, nor the workspace when it is refused before the restore.
 */
import { describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  contentFor,
  editPackMeta,
  readContent,
  requestFor,
  sameContent,
  writeContent,
} from '../../test-support/store/fixtures.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { withSandbox } from './helpers.js';

const HASH = sha256('shared hash');
const K1 = `clyde-a-linux_x64-default-${HASH}`;

async function setUp(sb: { base: string; store: string; ws: string }) {
  const store = await LocalStore.open(sb.store);
  const dir = path.join(sb.ws, 'k1');
  await writeContent(dir, contentFor(K1));
  await store.save(requestFor(K1, dir, { hash: HASH }));
  const file = path.join(sb.base, 'k1.pack');
  await store.exportPack(K1, file);
  const other = await LocalStore.open(path.join(sb.base, 'other-store'));
  return { store, other, pack: await fs.readFile(file), file };
}

async function restoresWhole(store: LocalStore, key: string, scratch: string): Promise<boolean> {
  const dest = path.join(scratch, `check-${Date.now()}`, 'out');
  await store.restore(key, [{ name: 'out', absPath: dest }]);
  return sameContent(await readContent(dest), contentFor(key));
}

describe('taking a pack as the entry asked for', () => {
  it('refuses a pack holding another key before storing anything', () =>
    withSandbox(async (sb) => {
      const { other, file } = await setUp(sb);
      const roots = [{ name: 'out', absPath: path.join(sb.base, 'restored', 'out') }];
      await expect(
        restoreAndAdopt(other, file, 'clyde-a-linux_x64-default-other', { roots }),
      ).rejects.toThrow(/the pack holds 'clyde-a-.*', not 'clyde-a-linux_x64-default-other'/);
      expect(await other.list()).toEqual([]);
      expect((await other.verify()).orphanBlobs).toEqual([]);
      expect(await fs.readdir(path.join(sb.base, 'restored')).catch(() => [])).toEqual([]);
      // the same pack asked for as what it is is taken
      expect((await restoreAndAdopt(other, file, K1, { roots })).key).toBe(K1);
      expect(sameContent(await readContent(roots[0]!.absPath), contentFor(K1))).toBe(true);
      expect(await restoresWhole(other, K1, sb.base)).toBe(true);
    }));

  it('stores an entry only when every output of it was restored, and so verified', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const out = path.join(sb.ws, 'two', 'out');
      const extra = path.join(sb.ws, 'two', 'extra');
      await writeContent(out, contentFor('out'));
      await writeContent(extra, contentFor('extra'));
      const saved = [
        { name: 'out', absPath: out },
        { name: 'extra', absPath: extra },
      ];
      await store.save(requestFor(K1, out, { hash: HASH, roots: saved }));
      const file = path.join(sb.base, 'two.pack');
      await store.exportPack(K1, file);
      const other = await LocalStore.open(path.join(sb.base, 'other-store'));
      const dest = path.join(sb.base, 'restored');
      const one = [{ name: 'out', absPath: path.join(dest, 'one', 'out') }];
      await expect(restoreAndAdopt(other, file, K1, { roots: one })).rejects.toThrow(
        /its output\(s\) extra were not restored here, so not verified/,
      );
      expect(sameContent(await readContent(one[0]!.absPath), contentFor('out'))).toBe(true);
      expect(await other.list()).toEqual([]);
      const both = saved.map((r) => ({ ...r, absPath: path.join(dest, 'both', r.name) }));
      expect((await restoreAndAdopt(other, file, K1, { roots: both })).key).toBe(K1);
      expect(sameContent(await readContent(both[1]!.absPath), contentFor('extra'))).toBe(true);
      expect((await other.verify({ deep: true })).problems).toEqual([]);
    }));

  it("refuses a pack whose hash is not its key's", () =>
    withSandbox(async (sb) => {
      const { store, pack } = await setUp(sb);
      const k2 = 'clyde-a-linux_x64-default-' + sha256('k2');
      const file = path.join(sb.base, 'k2.pack');
      // K2's pack claiming K1's package, version and hash: K1's directory
      await fs.writeFile(
        file,
        editPackMeta(pack, (m) => (m['key'] = k2)),
      );
      await expect(restoreAndAdopt(store, file, k2)).rejects.toMatchObject({
        name: 'UnsafeEntryError',
        message: expect.stringMatching(/not that of its key/),
      });
      expect(await restoresWhole(store, K1, sb.base)).toBe(true);
      expect((await store.verify({ deep: true })).problems).toEqual([]);
    }));

  it('never replaces the directory of another listed entry, even when the hash fits the key', () =>
    withSandbox(async (sb) => {
      const { store, pack } = await setUp(sb);
      // Another name with K1's hash as its last part: the hash fits, the directory is K1's.
      const k2 = `clyde-b-linux_x64-default-${HASH}`;
      const file = path.join(sb.base, 'k2.pack');
      await fs.writeFile(
        file,
        editPackMeta(pack, (m) => (m['key'] = k2)),
      );
      await expect(restoreAndAdopt(store, file, k2)).rejects.toThrow(
        /would take the directory of entry clyde-a-/,
      );
      expect((await store.list()).map((e) => e.key)).toEqual([K1]);
      expect(await restoresWhole(store, K1, sb.base)).toBe(true);
      expect((await store.verify({ deep: true })).problems).toEqual([]);
    }));

  it('a creation time in the future is taken as now', () =>
    withSandbox(async (sb) => {
      const { other, pack } = await setUp(sb);
      const file = path.join(sb.base, 'future.pack');
      await fs.writeFile(
        file,
        editPackMeta(pack, (m) => (m['createdAt'] = '2099-01-01T00:00:00.000Z')),
      );
      const meta = await restoreAndAdopt(other, file, K1);
      expect(Date.parse(meta.createdAt)).toBeLessThanOrEqual(Date.now());
    }));
});
