import { describe, it, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createCodec, LocalStore, type Codec } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  blobOf,
  buildPack,
  dirEntry,
  dirManifest,
  fileEntry,
  packMeta,
  sandbox,
  snapshotTree,
  writeTree,
  type Sandbox,
} from './helpers.js';

async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await sandbox();
  try {
    await fn(sb);
  } finally {
    await sb.cleanup();
  }
}

async function saveFixture(
  sb: Sandbox,
  codec: Codec,
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
  const store = await LocalStore.open(path.join(sb.base, 'store-a'), { codec });
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

describe('packs', () => {
  for (const [from, to] of [
    ['native', 'node'],
    ['node', 'native'],
  ] as const) {
    it(`round-trips an entry into a second store (${from} -> ${to})`, () =>
      withSandbox(async (sb) => {
        const { store, out, key } = await saveFixture(sb, await createCodec(from));
        const before = await snapshotTree(out);
        const pack = path.join(sb.base, 'entry.pack');
        const { bytes } = await store.exportPack(key, pack);
        expect(bytes).toBe((await fs.stat(pack)).size);

        const second = await LocalStore.open(path.join(sb.base, 'store-b'), {
          codec: await createCodec(to),
        });
        const meta = await second.importPack(pack);
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

        // importing again returns the existing entry
        expect(await second.importPack(pack)).toEqual(meta);
      }));
  }

  it('refuses a truncated pack, leaving no entry', () =>
    withSandbox(async (sb) => {
      const { store, key } = await saveFixture(sb, await createCodec('native'));
      const pack = path.join(sb.base, 'entry.pack');
      await store.exportPack(key, pack);
      const full = await fs.readFile(pack);
      const second = await LocalStore.open(path.join(sb.base, 'store-b'));
      for (const cut of [4, 20, Math.floor(full.length / 2), full.length - 41, full.length - 1]) {
        await fs.writeFile(pack, full.subarray(0, cut));
        await expect(second.importPack(pack)).rejects.toMatchObject({ name: 'StoreError' });
      }
      expect(await entriesIn(second)).toEqual([]);
      // extra bytes after the end marker are refused too
      await fs.writeFile(pack, Buffer.concat([full, Buffer.from('x')]));
      await expect(second.importPack(pack)).rejects.toMatchObject({ name: 'StoreError' });
      expect(await entriesIn(second)).toEqual([]);
    }));

  it('refuses bad magic, bad version and an oversized header length', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const pack = path.join(sb.base, 'p');
      const header = { meta: packMeta('k'), manifest: dirManifest([]) };
      await fs.writeFile(pack, buildPack(header, [], { magic: 'NOTAPACK' }));
      await expect(store.importPack(pack)).rejects.toThrow(/magic/);
      await fs.writeFile(pack, buildPack(header, [], { version: 2 }));
      await expect(store.importPack(pack)).rejects.toThrow(/version/);
      const huge = Buffer.concat([
        Buffer.from('CLYDEPK\n', 'latin1'),
        Buffer.from([0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]),
      ]);
      await fs.writeFile(pack, huge);
      await expect(store.importPack(pack)).rejects.toThrow(/too large/);
      await fs.writeFile(pack, buildPack('{not json', []));
      await expect(store.importPack(pack)).rejects.toMatchObject({ name: 'StoreError' });
      // a well-formed empty pack is fine
      await fs.writeFile(pack, buildPack(header, []));
      expect((await store.importPack(pack)).key).toBe('k');
    }));

  it('refuses a blob whose content does not match its digest; no entry, no blob', () =>
    withSandbox(async (sb) => {
      const codec = await createCodec('native');
      const store = await LocalStore.open(sb.store, { codec });
      const good = blobOf(codec, 'good content');
      const liar = {
        digest: sha256('expected content'),
        frame: codec.compress(Buffer.from('tampered content')),
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
      await expect(store.importPack(pack)).rejects.toThrow(/corrupt/);
      expect(await entriesIn(store)).toEqual([]);
      const blobDir = path.join(sb.store, 'blobs', liar.digest.slice(0, 2));
      expect(await fs.readdir(blobDir).catch(() => [])).not.toContain(liar.digest);
    }));

  it('refuses a pack missing a blob, carrying a stray blob, or one twice', () =>
    withSandbox(async (sb) => {
      const codec = await createCodec('node');
      const store = await LocalStore.open(sb.store, { codec });
      const a = blobOf(codec, 'aaa');
      const stray = blobOf(codec, 'zzz');
      const header = { meta: packMeta('k-m'), manifest: dirManifest([fileEntry('a', 'aaa')]) };
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(pack, buildPack(header, []));
      await expect(store.importPack(pack)).rejects.toThrow(/lacks/);
      await fs.writeFile(pack, buildPack(header, [a, stray]));
      await expect(store.importPack(pack)).rejects.toThrow(/does not use/);
      await fs.writeFile(pack, buildPack(header, [a, a]));
      await expect(store.importPack(pack)).rejects.toThrow(/twice/);
      expect(await entriesIn(store)).toEqual([]);
    }));

  it('refuses a blob claiming far more compressed bytes than its content could need', () =>
    withSandbox(async (sb) => {
      const codec = await createCodec('native');
      const store = await LocalStore.open(sb.store, { codec });
      const content = 'tiny';
      const blob = { digest: sha256(content), frame: Buffer.alloc(1_000_000) };
      const header = { meta: packMeta('k-big'), manifest: dirManifest([fileEntry('t', content)]) };
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(pack, buildPack(header, [blob]));
      await expect(store.importPack(pack)).rejects.toThrow(/compressed bytes/);
      expect(await entriesIn(store)).toEqual([]);
    }));

  it('refuses a decompression bomb (frame bigger than the manifest says)', () =>
    withSandbox(async (sb) => {
      for (const backend of ['native', 'node'] as const) {
        const codec = await createCodec(backend);
        const store = await LocalStore.open(sb.store, { codec });
        const real = Buffer.alloc(50_000_000);
        const header = {
          meta: packMeta(`k-bomb-${backend}`),
          manifest: dirManifest([{ ...fileEntry('b', real), size: 10 }]),
        };
        const pack = path.join(sb.base, 'p');
        await fs.writeFile(
          pack,
          buildPack(header, [{ digest: sha256(real), frame: codec.compress(real) }]),
        );
        await expect(store.importPack(pack)).rejects.toThrow(/pack blob/);
        expect(await entriesIn(store)).toEqual([]);
      }
    }));

  it('refuses a million-entry header', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      // Compact enough to pass the header-size limit, so the entry-count limit must refuse it.
      const entries = Array.from({ length: 1_000_000 }, (_, i) => ({
        ...dirEntry(`${i}`),
        mtimeMs: 0,
      }));
      const pack = path.join(sb.base, 'p');
      await fs.writeFile(
        pack,
        buildPack({ meta: packMeta('k-million'), manifest: dirManifest(entries) }, []),
      );
      await expect(store.importPack(pack)).rejects.toThrow(/too many entries/);
      expect(await entriesIn(store)).toEqual([]);
    }));
});
