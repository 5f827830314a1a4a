import { describe, it, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import type { OutputRoot, SaveRequest } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import { replaceFile } from '../../test-support/store/fixtures.js';
import { snapshotTree, writeTree, withSandbox } from './helpers.js';
import { zstdFrame } from '../../test-support/store/zstd.js';

function request(key: string, roots: readonly OutputRoot[], hash = sha256(key)): SaveRequest {
  return {
    key,
    package: 'my-lib',
    version: '1.0.0',
    hash,
    platform: 'linux-x64',
    variant: 'release',
    roots,
    keyManifest: { schema: 1, components: [] },
  };
}

async function blobCount(store: string): Promise<number> {
  let n = 0;
  for (const d of await fs.readdir(path.join(store, 'blobs'))) {
    n += (await fs.readdir(path.join(store, 'blobs', d))).length;
  }
  return n;
}

/** A fixture with every kind of thing a build output holds. */
async function fixture(dir: string): Promise<void> {
  await writeTree(dir, {
    'bin/tool': '#!/bin/sh\necho hi\n',
    'lib/a.txt': 'alpha\n',
    'lib/nested/deep/b.bin': randomBytes(70_000),
    'lib/empty.txt': '',
    'secret.key': 'do not share',
    'emptydir/': '',
    'lib/nested/emptier/': '',
    'readonly/inside.txt': 'locked in',
  });
  await fs.chmod(path.join(dir, 'readonly'), 0o555);
  await fs.chmod(path.join(dir, 'bin/tool'), 0o755);
  await fs.chmod(path.join(dir, 'lib/a.txt'), 0o644);
  await fs.chmod(path.join(dir, 'secret.key'), 0o600);
  await fs.symlink('lib/a.txt', path.join(dir, 'link-to-a'));
  await fs.symlink('../a.txt', path.join(dir, 'lib/nested/up'));
  await fs.symlink('deep', path.join(dir, 'lib/nested/dirlink'));
  const t = new Date(1_600_000_000_000);
  await fs.utimes(path.join(dir, 'lib/a.txt'), t, t);
  await fs.utimes(path.join(dir, 'bin/tool'), t, t);
}

describe('LocalStore save and restore', () => {
  it('round-trips files, modes, empty and nested directories, symlinks and mtimes', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await fixture(out);
      const before = await snapshotTree(out);
      const store = await LocalStore.open(sb.store);
      const saved = await store.save(
        request('clyde-lib-linux-release-1', [{ name: 'out', absPath: out }]),
      );
      expect(saved.created).toBe(true);
      expect(saved.entry.files).toBe(6);
      expect(saved.entry.roots).toEqual(['out']);
      expect(saved.newBlobs).toBeGreaterThan(0);

      // (a user who is not root can empty a read-only directory only after making it writable)
      await fs.chmod(path.join(out, 'readonly'), 0o755);
      await fs.rm(out, { recursive: true });
      const res = await store.restore(saved.entry.key, [{ name: 'out', absPath: out }], {
        mtimes: true,
      });
      expect(res.files).toBe(6);
      expect(await snapshotTree(out)).toEqual(before);
      expect((await fs.stat(path.join(out, 'lib/a.txt'))).mtimeMs).toBe(1_600_000_000_000);
      expect((await fs.stat(path.join(out, 'bin/tool'))).mode & 0o777).toBe(0o755);
      expect((await fs.readFile(path.join(out, 'link-to-a'))).toString()).toBe('alpha\n');
      // no staging directory left behind
      expect((await fs.readdir(sb.ws)).sort()).toEqual(['out']);

      // again, over the restored tree (read-only directory included)
      await fs.writeFile(path.join(out, 'lib/a.txt'), 'changed');
      await store.restore(saved.entry.key, [{ name: 'out', absPath: out }], { mtimes: true });
      expect(await snapshotTree(out)).toEqual(before);
      expect((await fs.readdir(sb.ws)).sort()).toEqual(['out']);
    }));

  it('gives files and directories their saved modes whatever the umask, fresh or merged', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, {
        'open/a.txt': 'a',
        'group/b.sh': 'b',
        'shut/c.txt': 'c',
        'shut/inner/d.txt': 'd',
        'private.key': 'k',
      });
      const modes: [string, number][] = [
        ['open/a.txt', 0o664],
        ['group/b.sh', 0o775],
        ['private.key', 0o600],
        ['shut/inner/d.txt', 0o444],
        ['shut/inner', 0o750],
        ['open', 0o777],
        ['group', 0o775],
        ['shut', 0o555],
      ];
      for (const [rel, mode] of modes) await fs.chmod(path.join(out, rel), mode);
      const before = await snapshotTree(out);
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-modes', [{ name: 'out', absPath: out }]));
      const old = process.umask(0o077);
      try {
        const fresh = path.join(sb.base, 'fresh', 'out');
        await store.restore(entry.key, [{ name: 'out', absPath: fresh }]);
        const restored = await snapshotTree(fresh);
        for (const [rel, m] of modes) {
          expect([rel, (restored[rel]?.mode ?? 0).toString(8)]).toEqual([rel, m.toString(8)]);
        }
        // Over an existing tree whose directories have other modes.
        const dest = path.join(sb.base, 'merged', 'out');
        await writeTree(dest, { 'open/mine.txt': 'mine', 'group/': '', 'shut/inner/': '' });
        await fs.chmod(path.join(dest, 'open'), 0o700);
        await fs.chmod(path.join(dest, 'shut/inner'), 0o555);
        await store.restore(entry.key, [{ name: 'out', absPath: dest }]);
        const got = await snapshotTree(dest);
        delete got['open/mine.txt'];
        expect(got).toEqual(before);
      } finally {
        process.umask(old);
      }
    }));

  for (const shut of [false, true]) {
    it(`settles the modes and mtimes of many directories${shut ? ', one of them shut to its owner' : ''}`, () =>
      withSandbox(async (sb) => {
        // Enough directories for two workers to share the work; a shut one makes it one list.
        const out = path.join(sb.ws, 'out');
        const tree: Record<string, string> = {};
        for (let i = 0; i < 40; i++) tree[`d${i}/sub${i % 3}/f.txt`] = `file ${i}`;
        await writeTree(out, tree);
        const dirs = Object.keys(tree).flatMap((f) => [
          path.dirname(f),
          path.dirname(path.dirname(f)),
        ]);
        const modeOf = (rel: string, i: number): number =>
          shut && rel === 'd7' ? 0o555 : [0o755, 0o750, 0o700, 0o775][i % 4]!;
        const at = (i: number) => new Date(1_500_000_000_000 + i * 1000);
        const unique = [...new Set(dirs)].sort().reverse();
        for (const [i, rel] of unique.entries()) {
          await fs.chmod(path.join(out, rel), modeOf(rel, i));
          await fs.utimes(path.join(out, rel), at(i), at(i));
        }
        const before = await snapshotTree(out);
        const times = async (root: string) =>
          Promise.all(unique.map(async (rel) => (await fs.lstat(path.join(root, rel))).mtimeMs));
        const mtimes = await times(out);
        const store = await LocalStore.open(sb.store);
        const { entry } = await store.save(request('k-dirs', [{ name: 'out', absPath: out }]));
        const dest = path.join(sb.base, 'restored', 'out');
        await store.restore(entry.key, [{ name: 'out', absPath: dest }], { mtimes: true });
        expect(await snapshotTree(dest)).toEqual(before);
        expect(await times(dest)).toEqual(mtimes);
        await fs.chmod(path.join(out, 'd7'), 0o755).catch(() => undefined);
        await fs.chmod(path.join(dest, 'd7'), 0o755).catch(() => undefined);
      }));
  }

  it('restores into an existing directory, replacing files and keeping unrelated ones', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'saved', 'sub/b.txt': 'saved b' });
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-merge', [{ name: 'out', absPath: out }]));
      await writeTree(out, { 'a.txt': 'changed', 'sub/b.txt': 'changed', 'sub/extra.txt': 'mine' });
      await store.restore(entry.key, [{ name: 'out', absPath: out }]);
      expect(await fs.readFile(path.join(out, 'a.txt'), 'utf8')).toBe('saved');
      expect(await fs.readFile(path.join(out, 'sub/b.txt'), 'utf8')).toBe('saved b');
      expect(await fs.readFile(path.join(out, 'sub/extra.txt'), 'utf8')).toBe('mine');
    }));

  it('handles a file root, an absent root, and roots not requested', () =>
    withSandbox(async (sb) => {
      const file = path.join(sb.ws, 'app.bin');
      const other = path.join(sb.ws, 'other');
      const missing = path.join(sb.ws, 'never-built');
      await fs.writeFile(file, 'binary');
      await writeTree(other, { 'x.txt': 'x' });
      const store = await LocalStore.open(sb.store);
      const roots = [
        { name: 'app.bin', absPath: file },
        { name: 'other', absPath: other },
        { name: 'never-built', absPath: missing },
      ];
      const { entry } = await store.save(request('k-roots', roots));
      expect(entry.roots).toEqual(['app.bin', 'other']);
      await fs.rm(file);
      await fs.rm(other, { recursive: true });
      await fs.writeFile(missing, 'left alone');
      await store.restore(entry.key, [
        { name: 'app.bin', absPath: file },
        { name: 'never-built', absPath: missing },
      ]);
      expect(await fs.readFile(file, 'utf8')).toBe('binary');
      expect(await fs.readFile(missing, 'utf8')).toBe('left alone');
      await expect(fs.lstat(other)).rejects.toThrow();
    }));

  it('skips symlinks that leave their root, with the rest saved', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'ok.txt': 'ok' });
      await fs.symlink('/etc/passwd', path.join(out, 'abs'));
      await fs.symlink('../../outside', path.join(out, 'escape'));
      await fs.symlink('ok.txt', path.join(out, 'fine'));
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-links', [{ name: 'out', absPath: out }]));
      await fs.rm(out, { recursive: true });
      await store.restore(entry.key, [{ name: 'out', absPath: out }]);
      expect((await fs.readdir(out)).sort()).toEqual(['fine', 'ok.txt']);
    }));

  it('refuses to restore through a root that is a symlink', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'a' });
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-rootlink', [{ name: 'out', absPath: out }]));
      await fs.rm(out, { recursive: true });
      await fs.symlink(sb.outside, out);
      await expect(store.restore(entry.key, [{ name: 'out', absPath: out }])).rejects.toMatchObject(
        {
          name: 'UnsafeEntryError',
        },
      );
      expect(await fs.readdir(sb.outside)).toEqual([]);
    }));

  it('replaces a workspace symlink where the entry has a directory, never writing through it', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'sub/f.txt': 'inside', 'sub/deeper/g.txt': 'g' });
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-replace', [{ name: 'out', absPath: out }]));
      await fs.rm(path.join(out, 'sub'), { recursive: true });
      await fs.symlink(sb.outside, path.join(out, 'sub'));
      await store.restore(entry.key, [{ name: 'out', absPath: out }]);
      expect((await fs.lstat(path.join(out, 'sub'))).isDirectory()).toBe(true);
      expect(await fs.readFile(path.join(out, 'sub/f.txt'), 'utf8')).toBe('inside');
      expect(await fs.readdir(sb.outside)).toEqual([]);
    }));
});

describe('LocalStore entries', () => {
  it('stores shared content once; remove keeps blobs the other entry needs', () =>
    withSandbox(async (sb) => {
      const a = path.join(sb.ws, 'a');
      const b = path.join(sb.ws, 'b');
      await writeTree(a, { 'shared.txt': 'same content', 'only-a.txt': 'a' });
      await writeTree(b, {
        'shared.txt': 'same content',
        'copy/shared.txt': 'same content',
        'only-b.txt': 'b',
      });
      const store = await LocalStore.open(sb.store);
      await store.save(request('k-a', [{ name: 'out', absPath: a }]));
      const eb = await store.save(request('k-b', [{ name: 'out', absPath: b }]));
      expect(eb.newBlobs).toBeLessThan(3);
      // every blob file is one the index counts (small files are grouped: snapshot.ts)
      expect(await blobCount(sb.store)).toBe((await store.snapshot()).blobSizes.size);

      await store.remove('k-a');
      expect(await store.get('k-a')).toBeUndefined();
      expect(await blobCount(sb.store)).toBe((await store.snapshot()).blobSizes.size);
      expect((await store.verify({ deep: true })).ok).toBe(true);
      await fs.rm(b, { recursive: true });
      await store.restore('k-b', [{ name: 'out', absPath: b }]);
      expect(await fs.readFile(path.join(b, 'copy/shared.txt'), 'utf8')).toBe('same content');

      await store.remove('k-b');
      expect(await blobCount(sb.store)).toBe(0);
      expect(await store.list()).toEqual([]);
    }));

  it('a commit writes again, from the saved files, the blobs a concurrent removal deleted', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, {
        'noise.bin': randomBytes(100_000),
        'text.txt': 'compressible line\n'.repeat(10_000),
        'small/a.txt': 'alpha',
        'small/b.txt': 'beta',
      });
      const roots = [{ name: 'out', absPath: out }];
      const before = await snapshotTree(out);
      const first = await LocalStore.open(sb.store);
      await first.save(request('k-old', roots));
      const blobsOfOld = await blobCount(sb.store);
      // The second save finds every blob present; then k-old goes, and its blobs with it.
      let removed = false;
      const second = await LocalStore.open(sb.store, {
        faults: {
          pause: async (point) => {
            if (point !== 'after-blobs' || removed) return;
            removed = true;
            await first.remove('k-old');
            expect(await blobCount(sb.store)).toBe(0);
          },
        },
      });
      await second.save(request('k-new', roots));
      expect(removed).toBe(true);
      expect(await blobCount(sb.store)).toBe(blobsOfOld);
      expect((await second.verify({ deep: true })).ok).toBe(true);
      const dest = path.join(sb.base, 'r', 'out');
      await second.restore('k-new', [{ name: 'out', absPath: dest }]);
      expect(await snapshotTree(dest)).toEqual(before);
    }));

  it('concurrent saves into one store all land in the index', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'shared.txt': 'shared', 'big.bin': randomBytes(100_000) });
      const stores = await Promise.all([LocalStore.open(sb.store), LocalStore.open(sb.store)]);
      const keys = Array.from({ length: 8 }, (_, i) => `k-conc-${i}`);
      const results = await Promise.all(
        keys.map((k, i) =>
          (stores[i % 2] as LocalStore).save(request(k, [{ name: 'out', absPath: out }])),
        ),
      );
      expect(results.every((r) => r.created)).toBe(true);
      const reopened = await LocalStore.open(sb.store);
      expect((await reopened.list()).map((e) => e.key)).toEqual(keys);
      expect(await blobCount(sb.store)).toBe((await reopened.snapshot()).blobSizes.size);
      expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
    }));

  it('save is idempotent: an existing key is not rewritten', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'first' });
      const store = await LocalStore.open(sb.store);
      const first = await store.save(request('k-same', [{ name: 'out', absPath: out }]));
      await writeTree(out, { 'a.txt': 'second' });
      const second = await store.save(request('k-same', [{ name: 'out', absPath: out }]));
      expect(second.created).toBe(false);
      expect(second.newBlobs).toBe(0);
      expect(second.entry).toEqual(first.entry);
      await store.restore('k-same', [{ name: 'out', absPath: out }]);
      expect(await fs.readFile(path.join(out, 'a.txt'), 'utf8')).toBe('first');
      expect((await store.list()).map((e) => e.key)).toEqual(['k-same']);
    }));

  it('findByPrefix picks the newest entry of the first prefix that matches', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'a' });
      const store = await LocalStore.open(sb.store);
      const roots = [{ name: 'out', absPath: out }];
      await store.save(request('clyde-x-linux-rel-0001', roots));
      await new Promise((r) => setTimeout(r, 15));
      await store.save(request('clyde-x-linux-rel-0003', roots));
      await new Promise((r) => setTimeout(r, 15));
      await store.save(request('clyde-x-linux-rel-0002', roots));
      await store.save(request('clyde-y-linux-rel-0009', roots));
      expect((await store.findByPrefix(['clyde-x-linux-rel-']))?.key).toBe(
        'clyde-x-linux-rel-0002',
      );
      expect((await store.findByPrefix(['clyde-z-', 'clyde-y-']))?.key).toBe(
        'clyde-y-linux-rel-0009',
      );
      expect(await store.findByPrefix(['nothing-'])).toBeUndefined();
    }));

  it('touch updates lastAccessAt', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'a' });
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-touch', [{ name: 'out', absPath: out }]));
      await new Promise((r) => setTimeout(r, 15));
      await store.touch('k-touch');
      const after = await store.get('k-touch');
      expect(Date.parse(after?.lastAccessAt ?? '')).toBeGreaterThan(Date.parse(entry.lastAccessAt));
      expect(after?.createdAt).toBe(entry.createdAt);
    }));

  it('rebuilds index.bin when it is deleted or truncated', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'a' });
      const store = await LocalStore.open(sb.store);
      await store.save(request('k-1', [{ name: 'out', absPath: out }]));
      await store.save(request('k-2', [{ name: 'out', absPath: out }]));
      const indexPath = path.join(sb.store, 'index.bin');
      const full = await fs.readFile(indexPath);
      const content = async (s: LocalStore): Promise<unknown> => {
        const { entries, blobs } = JSON.parse(await s.exportIndexJson());
        return { entries, blobs };
      };
      const expected = await content(store);

      await fs.rm(indexPath);
      const reopened = await LocalStore.open(sb.store);
      expect((await reopened.list()).map((e) => e.key)).toEqual(['k-1', 'k-2']);
      expect(await content(reopened)).toEqual(expected);

      await fs.writeFile(indexPath, full.subarray(0, full.length / 2));
      const again = await LocalStore.open(sb.store);
      expect((await again.get('k-2'))?.key).toBe('k-2');
      expect(await content(again)).toEqual(expected);
      expect((await again.verify()).ok).toBe(true);
    }));

  it('a corrupt blob makes restore throw, leaves the workspace untouched, is removed, and its entries become misses', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const other = path.join(sb.ws, 'other');
      // above the small-file size, so each file is a blob of its own
      const goodText = 'good\n'.repeat(20_000);
      const badText = 'this will be corrupted\n'.repeat(4000);
      await writeTree(out, { 'good.txt': goodText, 'bad.txt': badText });
      await writeTree(other, { 'good.txt': goodText });
      const store = await LocalStore.open(sb.store);
      const { entry } = await store.save(request('k-corrupt', [{ name: 'out', absPath: out }]));
      await store.save(request('k-other', [{ name: 'out', absPath: other }]));
      const digest = sha256(badText);
      const blob = path.join(sb.store, 'blobs', digest.slice(0, 2), digest);
      // same length, different content: a valid zstd frame of other bytes
      await replaceFile(blob, zstdFrame(Buffer.from(badText.toUpperCase())));
      await fs.rm(out, { recursive: true });
      await writeTree(out, { 'mine.txt': 'workspace' });
      const before = await snapshotTree(sb.ws);
      await expect(store.restore(entry.key, [{ name: 'out', absPath: out }])).rejects.toMatchObject(
        {
          name: 'StoreError',
        },
      );
      expect(await snapshotTree(sb.ws)).toEqual(before);
      await expect(fs.lstat(blob)).rejects.toThrow();
      expect(await store.get('k-corrupt')).toBeUndefined();
      expect((await store.list()).map((e) => e.key)).toEqual(['k-other']);
      const good = sha256(goodText);
      expect((await fs.lstat(path.join(sb.store, 'blobs', good.slice(0, 2), good))).isFile()).toBe(
        true,
      );
      expect((await store.verify({ deep: true })).ok).toBe(true);
    }));

  it('sanitises package and version directory names', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'a' });
      const store = await LocalStore.open(sb.store);
      const req = {
        ...request('k-names', [{ name: 'out', absPath: out }]),
        package: '../../evil',
        version: 'blobs',
      };
      await store.save(req);
      const top = (await fs.readdir(sb.store)).sort();
      expect(top).toEqual(['___.._evil', 'blobs', 'index.bin', 'layout', 'statcache', 'tmp']);
      expect(await fs.readdir(path.join(sb.store, '___.._evil'))).toEqual(['blobs_']);
      expect(await fs.readdir(sb.outside)).toEqual([]);
      await expect(store.save({ ...req, key: 'k-badhash', hash: '../x' })).rejects.toMatchObject({
        name: 'StoreError',
      });
    }));

  it('open removes stale leftovers in tmp/ and keeps fresh ones', () =>
    withSandbox(async (sb) => {
      await LocalStore.open(sb.store);
      const old = path.join(sb.store, 'tmp', 'old-leftover');
      const fresh = path.join(sb.store, 'tmp', 'fresh-leftover');
      await fs.writeFile(old, 'x');
      await fs.writeFile(fresh, 'y');
      const past = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await fs.utimes(old, past, past);
      await LocalStore.open(sb.store);
      expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual(['fresh-leftover']);
    }));
});
