/**
 * Locators on disk (blobs.ts), which entries saved before artifacts became tables still have:
 * the binary form, what a damaged one is refused for, and the first form (a zstd frame of
 * JSON); such entries still restore.
 */
import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../../src/errors.js';
import { decodeLocator, type Location } from '../../src/store/blobs.js';
import { createCodec } from '../../src/store/codec.js';
import { LocalStore } from '../../src/store/index.js';
import type { Manifest, ManifestEntry } from '../../src/store/manifest.js';
import { encodeLocator, toLegacyEntry } from '../../test-support/store/legacy.js';
import { snapshotTree, withSandbox, writeTree } from './helpers.js';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

function file(p: string, content: string): ManifestEntry {
  return {
    path: p,
    type: 'file',
    mode: 0o644,
    size: content.length,
    mtimeMs: 1,
    digest: hex(content),
  };
}

const files = [file('a', 'aaa'), file('b', 'bbbb'), file('c', 'own blob'), file('d', 'aaa')];
const manifest: Manifest = {
  schema: 1,
  roots: [{ name: 'out', kind: 'dir', mode: 0o755, mtimeMs: 1, entries: files }],
};
const g1 = hex('group one');
const g2 = hex('group two');
const locs = new Map<string, Location>([
  [hex('aaa'), { group: g1, groupSize: 7, offset: 0, size: 3 }],
  [hex('bbbb'), { group: g2, groupSize: 10, offset: 6, size: 4 }],
  [hex('not in the manifest'), { group: g1, groupSize: 7, offset: 3, size: 4 }],
]);

function encoded(): Buffer {
  const enc = encodeLocator(manifest, locs);
  if (enc === undefined) throw new Error('nothing encoded');
  return enc;
}

describe('locators', () => {
  it('round trip: the grouped files of the manifest, once each, nothing else', () => {
    const back = decodeLocator(encoded(), 'test');
    expect([...back.entries()]).toEqual([
      [hex('aaa'), locs.get(hex('aaa'))],
      [hex('bbbb'), locs.get(hex('bbbb'))],
    ]);
    expect(encodeLocator(manifest, new Map())).toBeUndefined();
  });

  it('refuses a damaged binary locator', () => {
    // Layout: 16-byte head, 2 groups of 40 bytes, then files of 52 bytes.
    const file0 = 16 + 2 * 40;
    const spoil: [string, (b: Buffer) => Buffer][] = [
      ['truncated', (b) => b.subarray(0, b.length - 1)],
      ['one byte more', (b) => Buffer.concat([b, Buffer.alloc(1)])],
      ['unknown version', (b) => (b.writeUInt32LE(9, 4), b)],
      ['more files than bytes', (b) => (b.writeUInt32LE(3, 12), b)],
      ['group index out of range', (b) => (b.writeUInt32LE(2, file0 + 32), b)],
      ['slice beyond its group', (b) => (b.writeDoubleLE(5, file0 + 36), b)],
      ['negative offset', (b) => (b.writeDoubleLE(-1, file0 + 36), b)],
      ['size not a number', (b) => (b.writeDoubleLE(Number.NaN, file0 + 44), b)],
      ['fractional group size', (b) => (b.writeDoubleLE(7.5, 16 + 32), b)],
      ['a group listed twice', (b) => (b.copy(b, 16 + 40, 16, 16 + 32), b)],
      ['not a locator', () => Buffer.from('not a locator at all')],
    ];
    for (const [what, fn] of spoil) {
      const body = fn(Buffer.from(encoded()));
      let thrown: unknown;
      try {
        decodeLocator(body, 'test');
      } catch (err) {
        thrown = err;
      }
      expect([what, thrown instanceof StoreError]).toEqual([what, true]);
    }
  });

  it('an entry of the earlier form (JSON artifact, locator file) still restores, its locator in either form', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const tree: Record<string, string> = {};
      for (let i = 0; i < 20; i++) tree[`lib/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
      await writeTree(out, tree);
      const store = await LocalStore.open(sb.store);
      await store.save({
        key: 'k',
        package: 'pkg',
        version: '1',
        hash: hex('k'),
        platform: 'linux-x64',
        variant: 'release',
        roots: [{ name: 'out', absPath: out }],
      });
      const entryDir = path.join(sb.store, 'pkg', '1', hex('k'));
      const locFile = (await toLegacyEntry(sb.store, entryDir)) as string;
      const binary = decodeLocator(await fs.readFile(locFile), 'saved');
      expect(binary.size).toBe(20);
      const first = path.join(sb.base, 'first', 'out');
      await (await LocalStore.open(sb.store)).restore('k', [{ name: 'out', absPath: first }]);
      expect(await snapshotTree(first)).toEqual(await snapshotTree(out));
      // Rewritten as the first form: u32 BE length, then a zstd frame of the JSON.
      const groups = [...new Set([...binary.values()].map((l) => l.group))];
      const json = Buffer.from(
        JSON.stringify({
          v: 1,
          groups: groups.map((g) => [
            g,
            [...binary.values()].find((l) => l.group === g)?.groupSize,
          ]),
          files: [...binary].map(([d, l]) => [d, groups.indexOf(l.group), l.offset, l.size]),
        }),
      );
      const len = Buffer.alloc(4);
      len.writeUInt32BE(json.length);
      const codec = await createCodec('node');
      await fs.chmod(locFile, 0o644);
      await fs.writeFile(locFile, Buffer.concat([len, codec.compress(json)]));

      const dest = path.join(sb.base, 'back', 'out');
      await (await LocalStore.open(sb.store)).restore('k', [{ name: 'out', absPath: dest }]);
      expect(await snapshotTree(dest)).toEqual(await snapshotTree(out));
    }));
});
