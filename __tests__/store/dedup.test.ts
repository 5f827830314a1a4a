/**
 * Content shared by several files of one save is hashed for each but compressed and written
 * once (the workers claim content in a table the save shares between them), and a file whose
 * claim another content happens to share (the first 64 bits of digest) is still stored.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { zstdContent } from '../../test-support/store/zstd.js';
import { requestFor } from '../../test-support/store/fixtures.js';
import type { SaveStats } from '../../src/store/types.js';
import { snapshotTree, withSandbox, writeTree } from './helpers.js';

const text = (n: number, seed: string): string =>
  Array.from({ length: n }, (_, i) => `${seed} line ${i}\n`).join('');
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Blob files on disk: standalone and group blobs. */
async function blobFiles(store: string): Promise<{ blobs: string[] }> {
  const all = (await fs.readdir(path.join(store, 'blobs'), { recursive: true })).filter((n) =>
    /[0-9a-f]{64}$/.test(n),
  );
  return { blobs: all.map((n) => path.basename(n)) };
}

const ENV = { ...process.env };

describe('dedup within one save', () => {
  afterEach(() => {
    process.env = { ...ENV };
  });

  const small = text(40, 'shared small'); // grouped (< 64 KiB)
  const large = text(4000, 'shared large'); // a blob of its own
  const tree: Record<string, string> = {
    'a/copy.js': small,
    'b/copy.js': small,
    'c/deep/copy.js': small,
    'one.bin': large,
    'two/one.bin': large,
    'unique.js': text(30, 'unique'),
  };

  it('stores content shared by several files once, and restores every copy', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, tree);
      const store = await LocalStore.open(sb.store);
      let stats: SaveStats | undefined;
      await store.save(requestFor('v1', out, { onStats: (s: SaveStats) => (stats = s) }));
      expect(stats).toMatchObject({ files: 6, read: 6, groups: 1 });

      const { blobs } = await blobFiles(sb.store);
      // One standalone blob for the large content (not two), and one group.
      expect(blobs).toContain(sha(large));
      expect(blobs).toHaveLength(2);
      const group = blobs.find((b) => b !== sha(large)) as string;
      const frame = await fs.readFile(path.join(sb.store, 'blobs', group.slice(0, 2), group));
      const groupSize = Buffer.byteLength(small) + Buffer.byteLength(text(30, 'unique'));
      // The group holds the shared small content once, next to the unique file.
      expect(zstdContent(frame, 'node')).toHaveLength(groupSize);

      const check = path.join(sb.base, 'check', 'out');
      await store.restore('v1', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(await snapshotTree(out));
      expect(await store.verify({ deep: true })).toMatchObject({ corruptBlobs: [], problems: [] });
    }));

  it('stores a file after all when its claim was taken by other content', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, tree);
      // As if another file's digest began with the same 64 bits as unique.js's.
      const store = await LocalStore.open(sb.store, {
        faults: { preclaimed: [sha(text(30, 'unique'))] },
      });
      await store.save(requestFor('v1', out));

      const { blobs } = await blobFiles(sb.store);
      // unique.js had no claimer to share with: it got a blob of its own.
      expect(blobs).toContain(sha(text(30, 'unique')));
      const check = path.join(sb.base, 'check', 'out');
      await (await LocalStore.open(sb.store)).restore('v1', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(await snapshotTree(out));
      expect(await store.verify({ deep: true })).toMatchObject({ corruptBlobs: [], problems: [] });
    }));
});
