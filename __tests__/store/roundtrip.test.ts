/**
 * Round trips through every kind of blob the save writes: compressed, stored as it is
 * (incompressible content in a raw-block zstd frame), small files grouped into shared blobs,
 * large files streamed; and the 1%-changed save, which reads only the files that changed.
 */
import { describe, it, expect } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isRawFrame, zstdContent } from '../../test-support/store/zstd.js';
import { LocalStore } from '../../src/store/index.js';
import { requestFor } from '../../test-support/store/fixtures.js';
import type { SaveStats } from '../../src/store/types.js';
import { snapshotTree, withSandbox, writeTree } from './helpers.js';

const request = requestFor;

function blobFile(store: string, digest: string): string {
  return path.join(store, 'blobs', digest.slice(0, 2), digest);
}

const text = (n: number, seed: string): string =>
  Array.from({ length: n }, (_, i) => `${seed} line ${i} of some build output\n`).join('');

async function fileDigest(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

describe('store round trips through every blob kind', () => {
  for (const grouped of [false, true]) {
    it(`compressed, raw, empty and small files (grouping ${grouped ? 'on, the default' : 'off'})`, () =>
      withSandbox(async (sb) => {
        const out = path.join(sb.ws, 'out');
        const random = randomBytes(300_000);
        const files: Record<string, string | Buffer> = {
          'big.txt': text(8000, 'big'),
          'random.bin': random,
          'already.gz': randomBytes(70_000),
          'empty.txt': '',
          'sub/dir/': '',
        };
        for (let i = 0; i < 40; i++) files[`small/f${i}.js`] = text(20 + i, `small ${i}`);
        await writeTree(out, files);
        await fs.chmod(path.join(out, 'small/f3.js'), 0o755);
        const before = await snapshotTree(out);

        const store = await LocalStore.open(sb.store);
        const saved = await store.save(
          request('k1', out, grouped ? {} : { groupSmallFiles: false }),
        );
        expect(saved.entry.files).toBe(44);
        // Incompressible content is stored as it is, in a frame any zstd decoder reads.
        const rawDigest = createHash('sha256').update(random).digest('hex');
        const frame = await fs.readFile(blobFile(sb.store, rawDigest));
        expect(isRawFrame(frame)).toBe(true);
        expect(frame.length).toBeLessThan(random.length + 100);
        for (const backend of ['native', 'node'] as const) {
          expect(zstdContent(frame, backend).equals(random)).toBe(true);
        }
        // Small files: one blob each, or a handful of group blobs.
        const smallDigest = createHash('sha256').update(text(20, 'small 0')).digest('hex');
        const standalone = await fs.stat(blobFile(sb.store, smallDigest)).catch(() => undefined);
        expect(standalone !== undefined).toBe(!grouped);

        await fs.rm(out, { recursive: true });
        // A fresh instance: grouped files are found through the entry's table on disk.
        const again = await LocalStore.open(sb.store);
        await again.restore('k1', [{ name: 'out', absPath: out }]);
        expect(await snapshotTree(out)).toEqual(before);
      }));
  }

  it('both zstd libraries read the blobs the workers wrote', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const content = Buffer.from(text(5000, 'interop'));
      await writeTree(out, { 'a.txt': content });
      const store = await LocalStore.open(sb.store);
      await store.save(request('k', out));
      const frame = await fs.readFile(
        blobFile(sb.store, createHash('sha256').update(content).digest('hex')),
      );
      expect(isRawFrame(frame)).toBe(false);
      for (const backend of ['native', 'node'] as const) {
        expect(zstdContent(frame, backend).equals(content)).toBe(true);
      }
    }));

  it('streams a 100 MB file (sparse-ish) and a 20 MB incompressible one', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await fs.mkdir(out, { recursive: true });
      const big = path.join(out, 'big.img');
      const fh = await fs.open(big, 'w');
      for (let off = 0; off < 100 * 1024 * 1024; off += 7 * 1024 * 1024) {
        await fh.write(randomBytes(64 * 1024), 0, 64 * 1024, off);
      }
      await fh.truncate(100 * 1024 * 1024);
      await fh.close();
      await fs.writeFile(path.join(out, 'noise.bin'), randomBytes(20 * 1024 * 1024));
      const want = {
        big: await fileDigest(big),
        noise: await fileDigest(path.join(out, 'noise.bin')),
      };
      const store = await LocalStore.open(sb.store);
      await store.save(request('k', out));
      const noiseFrame = await fs.open(blobFile(sb.store, want.noise), 'r');
      const head = Buffer.alloc(6);
      await noiseFrame.read(head, 0, 6, 0);
      await noiseFrame.close();
      expect(isRawFrame(head)).toBe(true);
      expect((await fs.stat(blobFile(sb.store, want.big))).size).toBeLessThan(20 * 1024 * 1024);

      const dest = path.join(sb.base, 'r', 'out');
      await store.restore('k', [{ name: 'out', absPath: dest }]);
      expect(await fileDigest(path.join(dest, 'big.img'))).toBe(want.big);
      expect(await fileDigest(path.join(dest, 'noise.bin'))).toBe(want.noise);
    }));
});

describe('the 1%-changed save', () => {
  it('reads only the files whose size, mtime or inode changed, and restores byte-identical', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const files: Record<string, string> = {};
      for (let i = 0; i < 30; i++) files[`f${i}.txt`] = text(50 + i, `v1 ${i}`);
      files['large.txt'] = text(5000, 'large');
      await writeTree(out, files);
      const store = await LocalStore.open(sb.store);
      await store.save(request('v1', out, { groupSmallFiles: true }));

      // As main would: restore v1 into a fresh workspace, then the build changes two files.
      const ws = path.join(sb.base, 'ws2', 'out');
      await store.restore('v1', [{ name: 'out', absPath: ws }]);
      await new Promise((r) => setTimeout(r, 120)); // past the racy-mtime window
      await fs.appendFile(path.join(ws, 'f7.txt'), 'changed\n');
      const replaced = path.join(ws, 'large.txt');
      await fs.writeFile(`${replaced}.new`, text(5000, 'large, rebuilt'));
      await fs.rename(`${replaced}.new`, replaced); // a new inode
      const expected = await snapshotTree(ws);

      let stats: SaveStats | undefined;
      const saved = await store.save(
        request('v2', ws, {
          groupSmallFiles: true,
          basis: 'v1',
          onStats: (s: SaveStats) => {
            stats = s;
          },
        }),
      );
      expect(saved.created).toBe(true);
      expect(stats).toMatchObject({ files: 31, reused: 29, read: 2 });

      // Without an explicit basis the newest entry of the package serves.
      const ws3 = path.join(sb.base, 'ws3', 'out');
      await store.restore('v2', [{ name: 'out', absPath: ws3 }]);
      expect(await snapshotTree(ws3)).toEqual(expected);
      await new Promise((r) => setTimeout(r, 120));
      await fs.appendFile(path.join(ws3, 'f1.txt'), 'again\n');
      let third: SaveStats | undefined;
      await store.save(
        request('v3', ws3, {
          groupSmallFiles: true,
          onStats: (s: SaveStats) => {
            third = s;
          },
        }),
      );
      expect(third).toMatchObject({ reused: 30, read: 1 });

      const check = path.join(sb.base, 'check', 'out');
      await (await LocalStore.open(sb.store)).restore('v2', [{ name: 'out', absPath: check }]);
      expect(await snapshotTree(check)).toEqual(expected);
    }));
});
