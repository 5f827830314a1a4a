import { describe, it, expect } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore, type Backend, type OutputRoot } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import { rawFrame, zstdFrame } from '../../test-support/store/zstd.js';
import { MAX_ENTRIES } from '../../src/store/manifest.js';
import { PACK_VERSION } from '../../src/store/pack.js';
import { decodeTable, groupAt } from '../../src/store/table.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { packHeader, type Placements } from '../../test-support/store/tables.js';
import {
  blobOf,
  buildPack as buildAnyPack,
  dirEntry,
  dirManifest,
  fileEntry,
  packMeta,
  snapshotTree,
  writeTree,
  type Sandbox,
  withSandbox,
} from './helpers.js';

/** A pack of the current format unless `opts.version` says otherwise. */
function buildPack(
  header: Parameters<typeof buildAnyPack>[0],
  blobs: Parameters<typeof buildAnyPack>[1],
  opts: Parameters<typeof buildAnyPack>[2] = {},
): Buffer {
  return buildAnyPack(header, blobs, { version: PACK_VERSION, ...opts });
}

async function saveFixture(
  sb: Sandbox,
  backend: Backend,
): Promise<{ store: LocalStore; out: string; key: string }> {
  const out = path.join(sb.ws, 'out');
  await writeTree(out, {
    'a.txt': 'alpha',
    'dup/a.txt': 'alpha',
    'big.bin': randomBytes(300_000),
    empty: '',
    'd/e/': '',
  });
  await fs.chmod(path.join(out, 'a.txt'), 0o600);
  await fs.symlink('d', path.join(out, 'link'));
  const store = await LocalStore.open(path.join(sb.base, 'store-a'), { backend });
  const key = 'clyde-pack-linux-rel-1';
  await store.save({
    key,
    package: 'pack',
    version: '2',
    hash: sha256(key),
    platform: 'linux-x64',
    variant: 'rel',
    roots: [{ name: 'out', absPath: out }],
    keyManifest: { hello: 'world' },
  });
  return { store, out, key };
}

async function entriesIn(store: LocalStore): Promise<string[]> {
  return (await store.list()).map((e) => e.key);
}

/** Where a test restores packs: `out` under `dir`, which a refused pack leaves empty. */
function outUnder(dir: string): OutputRoot[] {
  return [{ name: 'out', absPath: path.join(dir, 'out') }];
}

/** Nothing was restored under `dir` (not even a staging directory left behind). */
async function nothingUnder(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => []);
}

describe('packs', () => {
  for (const [from, to] of [
    ['native', 'node'],
    ['node', 'native'],
  ] as const) {
    it(`round-trips an entry into a second store (${from} -> ${to})`, () =>
      withSandbox(async (sb) => {
        const { store, out, key } = await saveFixture(sb, from);
        const before = await snapshotTree(out);
        const pack = path.join(sb.base, 'entry.pack');
        const { bytes } = await store.exportPack(key, pack);
        expect(bytes).toBe((await fs.stat(pack)).size);

        const second = await LocalStore.open(path.join(sb.base, 'store-b'), {
          backend: to,
        });
        const restored = path.join(sb.base, 'restored');
        const meta = await restoreAndAdopt(second, pack, key, { roots: outUnder(restored) });
        // restored straight from the pack, then an entry of the second store
        expect(await snapshotTree(path.join(restored, 'out'))).toEqual(before);
        const original = await store.get(key);
        expect(meta.key).toBe(key);
        expect(meta.createdAt).toBe(original?.createdAt);
        expect(meta.sizeBytes).toBe(original?.sizeBytes);
        expect(meta.files).toBe(4);
        expect(meta.keyManifest).toEqual({ hello: 'world' });
        expect(await second.get(key)).toEqual(meta);

        await fs.rm(out, { recursive: true });
        await second.restore(key, [{ name: 'out', absPath: out }]);
        expect(await snapshotTree(out)).toEqual(before);

        // taking it again returns the existing entry
        expect(await restoreAndAdopt(second, pack, key)).toEqual(meta);
      }));
  }

  it('refuses a truncated pack, leaving no entry and nothing restored', () =>
    withSandbox(async (sb) => {
      const { store, key } = await saveFixture(sb, 'native');
      const pack = path.join(sb.base, 'entry.pack');
      await store.exportPack(key, pack);
      const full = await fs.readFile(pack);
      const second = await LocalStore.open(path.join(sb.base, 'store-b'));
      const dest = path.join(sb.base, 'r');
      const take = () => restoreAndAdopt(second, pack, key, { roots: outUnder(dest) });
      for (const cut of [4, 20, Math.floor(full.length / 2), full.length - 41, full.length - 1]) {
        await fs.writeFile(pack, full.subarray(0, cut));
        await expect(take()).rejects.toMatchObject({ name: 'StoreError' });
      }
      expect(await entriesIn(second)).toEqual([]);
      // extra bytes after the end marker are refused too
      await fs.writeFile(pack, Buffer.concat([full, Buffer.from('x')]));
      await expect(take()).rejects.toMatchObject({ name: 'StoreError' });
      expect(await entriesIn(second)).toEqual([]);
      expect(await nothingUnder(dest)).toEqual([]);
    }));

  it('refuses bad magic, bad or older versions and an oversized meta or table length', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const pack = path.join(sb.base, 'p');
      const take = () => restoreAndAdopt(store, pack, 'k', { roots: outUnder(sb.ws) });
      const header = { meta: packMeta('k'), manifest: dirManifest([]) };
      await fs.writeFile(pack, buildPack(header, [], { magic: 'NOTAPACK' }));
      await expect(take()).rejects.toThrow(/magic/);
      await fs.writeFile(pack, buildPack(header, [], { version: 99 }));
      await expect(take()).rejects.toThrow(/version/);
      // formats 1 (one blob per file, before groups) and 2 (a JSON manifest and locator) are
      // refused, saying why
      await fs.writeFile(pack, buildPack(header, [], { version: 1 }));
      await expect(take()).rejects.toThrow(/version 1 .*older clyde-cache/);
      await fs.writeFile(pack, buildPack(header, [], { version: 2 }));
      await expect(take()).rejects.toThrow(
        /version 2 \(written by an older clyde-cache, with a JSON manifest and locator\)/,
      );
      const huge = Buffer.concat([
        Buffer.from('CLYDEPK\n', 'latin1'),
        Buffer.from([0, 0, 0, PACK_VERSION, 0x7f, 0xff, 0xff, 0xff]),
      ]);
      await fs.writeFile(pack, huge);
      await expect(take()).rejects.toThrow(/meta too large/);
      const metaBytes = Buffer.from(JSON.stringify(packMeta('k')));
      const hugeTable = Buffer.concat([
        Buffer.from('CLYDEPK\n', 'latin1'),
        Buffer.from([0, 0, 0, PACK_VERSION]),
        Buffer.from([0, 0, 0, 0]),
        metaBytes,
        Buffer.from([0x7f, 0xff, 0xff, 0xff]),
      ]);
      hugeTable.writeUInt32BE(metaBytes.length, 12);
      await fs.writeFile(pack, hugeTable);
      await expect(take()).rejects.toThrow(/table too large/);
      await fs.writeFile(pack, buildPack('{not json', []));
      await expect(take()).rejects.toMatchObject({ name: 'StoreError' });
      expect(await nothingUnder(sb.ws)).toEqual([]);
      // a well-formed empty pack is fine
      await fs.writeFile(pack, buildPack(header, []));
      expect((await take()).key).toBe('k');
      expect(await nothingUnder(path.join(sb.ws, 'out'))).toEqual([]);
    }));

  it('refuses a blob whose content does not match its digest; no entry, no blob', () =>
    withSandbox(async (sb) => {
      const backend = 'native';
      const store = await LocalStore.open(sb.store, { backend });
      const good = blobOf('good content', backend);
      const liar = {
        digest: sha256('expected content'),
        frame: zstdFrame('tampered content', backend),
      };
      const header = {
        meta: packMeta('k-liar'),
        manifest: dirManifest([
          fileEntry('good', 'good content'),
          fileEntry('bad', 'expected content'),
        ]),
      };
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(pack, buildPack(header, [good, liar]));
      await expect(
        restoreAndAdopt(store, pack, 'k-liar', { roots: outUnder(sb.ws) }),
      ).rejects.toThrow(/content does not match its digest/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
      const blobDir = path.join(sb.store, 'blobs', liar.digest.slice(0, 2));
      expect(await fs.readdir(blobDir).catch(() => [])).not.toContain(liar.digest);
    }));

  it('a corrupt blob among many is refused with its own error, nothing left beside the outputs', () =>
    withSandbox(async (sb) => {
      const backend = 'native';
      const store = await LocalStore.open(sb.store, { backend });
      // The liar is the largest file, written first; thousands of small ones fill batches still
      // being written when it fails. They must settle before the staging directory is removed
      // (before: ENOTEMPTY hid the refusal's reason, and could leave the directory behind).
      const expected = randomBytes(3 * 1024 * 1024);
      const liar = { digest: sha256(expected), frame: rawFrame(randomBytes(expected.length)) };
      const others = Array.from({ length: 3000 }, () => randomBytes(8 * 1024));
      const header = {
        meta: packMeta('k-many'),
        manifest: dirManifest([
          fileEntry('liar', expected),
          ...others.map((c, i) => fileEntry(`f${i}`, c)),
        ]),
      };
      const pack = path.join(sb.base, 'p');
      const blobs = [liar, ...others.map((c) => ({ digest: sha256(c), frame: rawFrame(c) }))];
      await fs.writeFile(pack, buildPack(header, blobs));
      await expect(
        restoreAndAdopt(store, pack, 'k-many', { roots: outUnder(sb.ws) }),
      ).rejects.toThrow(/content does not match its digest/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
    }));

  it('refuses a pack missing a blob, carrying a stray blob, or one twice', () =>
    withSandbox(async (sb) => {
      const backend = 'node';
      const store = await LocalStore.open(sb.store, { backend });
      const a = blobOf('aaa', backend);
      const stray = blobOf('zzz', backend);
      const header = { meta: packMeta('k-m'), manifest: dirManifest([fileEntry('a', 'aaa')]) };
      const pack = path.join(sb.base, 'p');
      const take = () => restoreAndAdopt(store, pack, 'k-m', { roots: outUnder(sb.ws) });
      await fs.writeFile(pack, buildPack(header, []));
      await expect(take()).rejects.toThrow(/lacks/);
      await fs.writeFile(pack, buildPack(header, [a, stray]));
      await expect(take()).rejects.toThrow(/does not use/);
      await fs.writeFile(pack, buildPack(header, [a, a]));
      await expect(take()).rejects.toThrow(/twice/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
    }));

  it('refuses a blob claiming far more compressed bytes than its content could need', () =>
    withSandbox(async (sb) => {
      const backend = 'native';
      const store = await LocalStore.open(sb.store, { backend });
      const content = 'tiny';
      const blob = { digest: sha256(content), frame: Buffer.alloc(1_000_000) };
      const header = { meta: packMeta('k-big'), manifest: dirManifest([fileEntry('t', content)]) };
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(pack, buildPack(header, [blob]));
      await expect(
        restoreAndAdopt(store, pack, 'k-big', { roots: outUnder(sb.ws) }),
      ).rejects.toThrow(/compressed bytes/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
    }));

  it('refuses a decompression bomb (frame bigger than the manifest says)', () =>
    withSandbox(async (sb) => {
      for (const backend of ['native', 'node'] as const) {
        const store = await LocalStore.open(sb.store, { backend });
        const real = Buffer.alloc(50_000_000);
        const header = {
          meta: packMeta(`k-bomb-${backend}`),
          manifest: dirManifest([{ ...fileEntry('b', real), size: 10 }]),
        };
        const pack = path.join(sb.base, 'p');
        await fs.writeFile(
          pack,
          buildPack(header, [{ digest: sha256(real), frame: zstdFrame(real, backend) }]),
        );
        await expect(
          restoreAndAdopt(store, pack, `k-bomb-${backend}`, { roots: outUnder(sb.ws) }),
        ).rejects.toThrow(/holds more than 10 bytes/);
        expect(await entriesIn(store)).toEqual([]);
        expect(await nothingUnder(sb.ws)).toEqual([]);
      }
    }));

  it('refuses a frame longer than what remains of the pack, before reading it', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const header = {
        meta: packMeta('k-long-frame'),
        manifest: dirManifest([{ ...fileEntry('b', 'x'), size: 3 * 1024 ** 3 }]),
      };
      const pack = buildPack(header, [{ digest: sha256('x'), frame: Buffer.from('tiny') }]);
      // The record claims a 2 GiB frame (allowed for 3 GiB of content); the pack holds 4 bytes.
      const at = pack.length - 40 - 4 - 8;
      pack.writeBigUInt64BE(2n * 1024n ** 3n, at);
      const file = path.join(sb.base, 'p');
      await fs.writeFile(file, pack);
      await expect(
        restoreAndAdopt(store, file, 'k-long-frame', { roots: outUnder(sb.ws) }),
      ).rejects.toThrow(/claims 2147483648 bytes; only \d+ remain/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
    }));

  it('refuses a pack whose blobs do not fit in the store (root only: mounts a tmpfs)', () =>
    withSandbox(async (sb) => {
      if (process.getuid?.() !== 0) {
        console.warn('skipped: mounting a tmpfs needs root');
        return;
      }
      const mnt = path.join(sb.base, 'small');
      await fs.mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
      try {
        const store = await LocalStore.open(mnt);
        const content = randomBytes(32 * 1024 * 1024);
        const header = {
          meta: packMeta('k-too-big'),
          manifest: dirManifest([fileEntry('b', content)]),
        };
        const file = path.join(sb.base, 'p');
        await fs.writeFile(
          file,
          buildPack(header, [{ digest: sha256(content), frame: rawFrame(content) }]),
        );
        // Restored where there is room (the workspace), it does not fit in the store.
        const take = (dir: string) =>
          restoreAndAdopt(store, file, 'k-too-big', { roots: outUnder(dir) });
        await expect(take(sb.ws)).rejects.toThrow(/blobs do not fit in the local store/);
        expect(await entriesIn(store)).toEqual([]);
        expect((await store.verify()).orphanBlobs).toEqual([]);
        // Restored on the full filesystem, it is refused before a file is written.
        const cramped = path.join(mnt, 'ws');
        await expect(take(cramped)).rejects.toThrow(/more than the .* free where/);
        expect(await nothingUnder(cramped)).toEqual([]);
        expect(await entriesIn(store)).toEqual([]);
      } finally {
        execFileSync('umount', [mnt]);
      }
    }));

  it('refuses a table of more entries than an entry may hold', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      // Compact enough to pass the table-size limit, so the entry-count limit must refuse it.
      const entries = Array.from({ length: MAX_ENTRIES + 50_000 }, (_, i) => ({
        ...dirEntry(`${i}`),
        mtimeMs: 0,
      }));
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(
        pack,
        buildPack({ meta: packMeta('k-million'), manifest: dirManifest(entries) }, []),
      );
      await expect(
        restoreAndAdopt(store, pack, 'k-million', { roots: outUnder(sb.ws) }),
      ).rejects.toThrow(/too many rows/);
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
    }));

  it('carries group blobs and the table as they are, and restores them in a second store', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const files: Record<string, string | Buffer> = { 'big.bin': randomBytes(200_000) };
      for (let i = 0; i < 60; i++) files[`src/m${i}.js`] = `module ${i}\n`.repeat(40 + i);
      await writeTree(out, files);
      const before = await snapshotTree(out);
      const store = await LocalStore.open(path.join(sb.base, 'store-a'));
      const key = 'clyde-pack-grouped';
      await store.save({
        key,
        package: 'pack',
        version: '1',
        hash: sha256(key),
        platform: 'linux-x64',
        variant: 'rel',
        roots: [{ name: 'out', absPath: out }],
      });
      const pack = path.join(sb.base, 'grouped.pack');
      await store.exportPack(key, pack);
      const bytes = await fs.readFile(pack);
      // the pack carries the entry's table, the very bytes of its artifact
      const { table } = packHeader(bytes);
      const artifact = path.join(sb.base, 'store-a', 'pack', '1', sha256(key), 'artifact');
      expect(table.equals(await fs.readFile(artifact))).toBe(true);
      // the small files travel in their group blobs, byte for byte as stored
      const t = decodeTable(Buffer.from(table));
      let grouped = 0;
      for (let i = 0; i < t.rows; i++) if (groupAt(t, i) >= 0) grouped++;
      expect(grouped).toBe(60);
      const groups = t.header.groups;
      expect(groups.length).toBeGreaterThan(0);
      for (const [group] of groups) {
        const frame = await fs.readFile(
          path.join(sb.base, 'store-a', 'blobs', group.slice(0, 2), group),
        );
        expect(bytes.includes(frame)).toBe(true);
      }

      const second = await LocalStore.open(path.join(sb.base, 'store-b'));
      const fromPack = path.join(sb.base, 'from-pack');
      const meta = await restoreAndAdopt(second, pack, key, { roots: outUnder(fromPack) });
      expect(await snapshotTree(path.join(fromPack, 'out'))).toEqual(before);
      expect(meta.files).toBe(61);
      expect((await second.verify({ deep: true })).ok).toBe(true);
      const dest = path.join(sb.base, 'r', 'out');
      await second.restore(key, [{ name: 'out', absPath: dest }]);
      expect(await snapshotTree(dest)).toEqual(before);
    }));

  it('verifies every grouped file: a wrong slice or a bad placement is refused', () =>
    withSandbox(async (sb) => {
      const backend = 'native';
      const store = await LocalStore.open(sb.store, { backend });
      const content = Buffer.from('aaaabbbb');
      const group = { digest: sha256(content), frame: zstdFrame(content, backend) };
      const manifest = dirManifest([fileEntry('a', 'aaaa'), fileEntry('b', 'bbbb')]);
      const placed = (at: [string, number][], size = 8): Placements =>
        new Map(at.map(([d, offset]) => [d, [group.digest, size, offset] as const]));
      const pack = path.join(sb.base, 'p');
      const cases: [string, Placements, RegExp][] = [
        [
          'a file placed on the wrong slice',
          placed([
            [sha256('aaaa'), 0],
            [sha256('bbbb'), 0],
          ]),
          /does not hold .* where its entry says/,
        ],
        ['a slice outside its group', placed([[sha256('aaaa'), 6]]), /malformed/],
        ['a group of the wrong size', placed([[sha256('aaaa'), 0]], 9), /corrupt|holds/],
      ];
      for (const [name, at, why] of cases) {
        const header = { meta: packMeta(`k-${name}`), manifest, placed: at };
        // 'bbbb' travels on its own only when the table does not place it in the group.
        const alone = at.has(sha256('bbbb')) ? [] : [blobOf('bbbb', backend)];
        await fs.writeFile(pack, buildPack(header, [group, ...alone]));
        const err = await restoreAndAdopt(store, pack, `k-${name}`, {
          roots: outUnder(sb.ws),
        }).then(
          () => new Error(`${name}: imported`),
          (e: unknown) => e as Error,
        );
        expect([name, err.name, err.message]).toEqual([
          name,
          'StoreError',
          expect.stringMatching(why),
        ]);
      }
      expect(await entriesIn(store)).toEqual([]);
      expect(await nothingUnder(sb.ws)).toEqual([]);
      // the honest one is accepted and restores
      const good = placed([
        [sha256('aaaa'), 0],
        [sha256('bbbb'), 4],
      ]);
      await fs.writeFile(
        pack,
        buildPack({ meta: packMeta('k-good'), manifest, placed: good }, [group]),
      );
      await restoreAndAdopt(store, pack, 'k-good', { roots: outUnder(sb.ws) });
      const dest = path.join(sb.base, 'good');
      await store.restore('k-good', [{ name: 'out', absPath: dest }]);
      expect(await fs.readFile(path.join(dest, 'b'), 'utf8')).toBe('bbbb');
    }));
});
