/**
 * Faults other than a kill: a damaged index, a corrupt blob, a full disk. After each the store
 * opens, passes verify() and restores every entry it still lists byte-identically.
 */
import { describe, it, expect } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { ENOSPC_AFTER_ENV } from '../../test-support/store/faults.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  bytesFrom,
  checkHealthy,
  contentFor,
  readContent,
  replaceFile,
  requestFor,
  sameContent,
  writeContent,
} from '../../test-support/store/fixtures.js';
import { runChild } from '../../test-support/store/spawn.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { withSandbox } from './helpers.js';
import { zstdFrame } from '../../test-support/store/zstd.js';

async function seed(root: string, ws: string, keys: readonly string[]): Promise<LocalStore> {
  const store = await LocalStore.open(root, { lockStaleMs: 2_000 });
  for (const key of keys) {
    const dir = path.join(ws, key);
    await writeContent(dir, contentFor(key));
    await store.save(requestFor(key, dir));
  }
  return store;
}

function blobPath(root: string, content: Buffer): string {
  const d = sha256(content);
  return path.join(root, 'blobs', d.slice(0, 2), d);
}

describe('a damaged index', () => {
  const damages: Record<string, (buf: Buffer) => Buffer> = {
    truncated: (b) => b.subarray(0, Math.floor(b.length / 2)),
    'truncated to its header': (b) => b.subarray(0, 40),
    'one byte flipped in the body': (b) => {
      const c = Buffer.from(b);
      c[c.length - 10] = (c[c.length - 10] ?? 0) ^ 0xff;
      return c;
    },
    'not an index': () => Buffer.from('{"schema":1,"entries":[]}'),
    empty: () => Buffer.alloc(0),
  };
  for (const [name, damage] of Object.entries(damages)) {
    it(`(${name}) is rebuilt from the entries on open`, () =>
      withSandbox(async (sb) => {
        const store = await seed(sb.store, sb.ws, ['a', 'b', 'c']);
        const before = JSON.parse(await store.exportIndexJson());
        const indexPath = path.join(sb.store, 'index.bin');
        await fs.writeFile(indexPath, damage(await fs.readFile(indexPath)));
        const health = await checkHealthy(sb.store, sb.base);
        expect(health.problems).toEqual([]);
        expect(health.keys).toEqual(['a', 'b', 'c']);
        const after = JSON.parse(await (await LocalStore.open(sb.store)).exportIndexJson());
        expect(after.entries).toEqual(before.entries);
        expect(after.blobs).toEqual(before.blobs);
      }));
  }

  it('another open instance sees the rebuilt index and later writes', () =>
    withSandbox(async (sb) => {
      const first = await seed(sb.store, sb.ws, ['a']);
      await fs.writeFile(path.join(sb.store, 'index.bin'), 'garbage');
      const second = await seed(sb.store, sb.ws, ['b']);
      expect((await first.snapshot()).entries.map((e) => e.key)).toEqual(['a', 'b']);
      await first.remove('b');
      expect(await second.get('b')).toBeUndefined();
    }));
});

describe('a corrupt blob', () => {
  it('found by restore: the restore fails, the blob and the entries needing it go', () =>
    withSandbox(async (sb) => {
      const store = await seed(sb.store, sb.ws, ['a', 'b', 'c']);
      const blob = blobPath(sb.store, contentFor('b')['own/data.bin']!);
      await replaceFile(blob, zstdFrame(bytesFrom('not it', 70_000)));
      await expect(
        store.restore('b', [{ name: 'out', absPath: path.join(sb.base, 'r', 'out') }]),
      ).rejects.toMatchObject({ name: 'StoreError' });
      await expect(fs.access(path.join(sb.base, 'r'))).rejects.toThrow();
      await expect(fs.access(blob)).rejects.toThrow();
      const health = await checkHealthy(sb.store, sb.base);
      expect(health.problems).toEqual([]);
      expect(health.keys).toEqual(['a', 'c']);
    }));

  it('found by a deep verify: reported, and repair drops what needs it', () =>
    withSandbox(async (sb) => {
      const store = await seed(sb.store, sb.ws, ['a', 'b']);
      const blob = blobPath(sb.store, contentFor('a')['own/data.bin']!);
      await replaceFile(blob, Buffer.from('not even zstd'));
      expect((await store.verify()).ok).toBe(true); // the shallow check only sees it exists
      const deep = await store.verify({ deep: true });
      expect(deep.ok).toBe(false);
      expect(deep.corruptBlobs).toEqual([sha256(contentFor('a')['own/data.bin']!)]);
      await store.verify({ deep: true, repair: true, orphanMinAgeMs: 0 });
      const health = await checkHealthy(sb.store, sb.base);
      expect(health.problems).toEqual([]);
      expect(health.keys).toEqual(['b']);
      expect((await store.verify()).orphanBlobs).toEqual([]);
    }));
});

/** Mounts a small tmpfs at `dir`; false where that is not allowed (not root, no Linux). */
function mountTmpfs(dir: string, bytes: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

describe('a full disk', () => {
  it('fails the save with the store intact (a small tmpfs, else an injected ENOSPC)', () =>
    withSandbox(async (sb) => {
      const disk = path.join(sb.base, 'disk');
      await fs.mkdir(disk);
      const mounted = process.platform === 'linux' && mountTmpfs(disk, 1_200_000);
      const root = path.join(disk, 'store');
      try {
        await seed(root, sb.ws, ['fits']);
        // The child saves its fixture plus a file too big (and incompressible) for the tmpfs.
        const big = path.join(sb.ws, 'big');
        await writeContent(path.join(big, 'src', 'too-big', 'out'), {
          'huge.bin': bytesFrom('huge', 2_000_000),
        });
        if (!mounted) process.stdout.write('no tmpfs here: injecting ENOSPC at blob writes\n');
        // A child process, so that its leftovers belong to a process that is gone.
        const r = await runChild(
          { op: 'save', store: root, work: big, key: 'too-big' },
          mounted ? {} : { [ENOSPC_AFTER_ENV]: '1' },
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/ENOSPC/);
        const health = await checkHealthy(root, sb.base);
        expect(health.problems).toEqual([]);
        expect(health.keys).toEqual(['fits']);
        expect(await fs.readdir(path.join(root, 'tmp'))).toEqual([]);
      } finally {
        if (mounted) execFileSync('umount', [disk]);
      }
    }));
});

describe('an ENOSPC injected where blobs are written (no root needed)', () => {
  const cases: [string, Record<string, Buffer>][] = [
    [
      'small files, written by the workers',
      { 'a.txt': bytesFrom('a', 100_000), 'b.txt': bytesFrom('b', 3_000) },
    ],
    ['a file streamed in chunks', { 'large.bin': bytesFrom('large', 17 * 1024 * 1024) }],
  ];
  for (const [name, files] of cases) {
    it(`fails the save with the store intact: ${name}`, () =>
      withSandbox(async (sb) => {
        await seed(sb.store, sb.ws, ['fits']);
        const dir = path.join(sb.ws, 'full');
        await writeContent(dir, files);
        const full = await LocalStore.open(sb.store, { faults: { enospcAfter: 0 } });
        await expect(full.save(requestFor('full', dir))).rejects.toThrow(/ENOSPC/);
        const health = await checkHealthy(sb.store, sb.base);
        expect(health.problems).toEqual([]);
        expect(health.keys).toEqual(['fits']);
        expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
      }));
  }

  it('fails taking a downloaded pack with the store intact (the restore is done)', () =>
    withSandbox(async (sb) => {
      const other = path.join(sb.base, 'other');
      await seed(other, sb.ws, ['remote']);
      const pack = path.join(sb.base, 'remote.pack');
      await (await LocalStore.open(other)).exportPack('remote', pack);
      await seed(sb.store, sb.ws, ['fits']);
      const full = await LocalStore.open(sb.store, { faults: { enospcAfter: 0 } });
      const roots = [{ name: 'out', absPath: path.join(sb.base, 'restored', 'out') }];
      await expect(restoreAndAdopt(full, pack, 'remote', { roots })).rejects.toThrow(/ENOSPC/);
      expect(sameContent(await readContent(roots[0]!.absPath), contentFor('remote'))).toBe(true);
      const health = await checkHealthy(sb.store, sb.base);
      expect(health.problems).toEqual([]);
      expect(health.keys).toEqual(['fits']);
      expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
    }));
});
