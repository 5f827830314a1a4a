/**
 * The index: reference counts (shared blobs freed only with their last entry), snapshot(),
 * removeMany(), the binary format and its checks, processes seeing each other's writes, and
 * the load of a 10k-entry / 1M-blob index (time printed, not asserted).
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import {
  decodeIndex,
  encodeIndex,
  StoreIndex,
  type IndexEntry,
} from '../../src/store/index-file.js';
import { sha256 } from '../../src/util/bytes.js';
import { contentFor, requestFor, writeContent } from '../../test-support/store/fixtures.js';
import { sandbox, writeTree, type Sandbox } from './helpers.js';

async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await sandbox();
  try {
    await fn(sb);
  } finally {
    await sb.cleanup();
  }
}

async function blobFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(path.join(root, 'blobs'))) {
    out.push(...(await fs.readdir(path.join(root, 'blobs', d))));
  }
  return out.sort();
}

function entry(key: string, blobs: string[], at = 1_700_000_000_000): IndexEntry {
  return {
    key,
    package: 'pkg',
    version: '1',
    hash: sha256(key),
    platform: 'linux-x64',
    variant: 'release',
    createdAt: at,
    lastAccessAt: at + 1,
    sizeBytes: 1000,
    storedBytes: 500,
    files: blobs.length,
    blobs,
  };
}

describe('reference counts', () => {
  it('two versions sharing most files store them once; removing one frees only its own', () =>
    withSandbox(async (sb) => {
      const v1 = path.join(sb.ws, 'v1');
      const v2 = path.join(sb.ws, 'v2');
      const shared: Record<string, string> = {};
      // above the small-file size, so each file is a blob of its own
      for (let i = 0; i < 20; i++) shared[`lib/f${i}.txt`] = `shared file ${i}\n`.repeat(5000);
      await writeTree(v1, { ...shared, 'own.txt': 'version one\n'.repeat(7000) });
      await writeTree(v2, { ...shared, 'own.txt': 'version two\n'.repeat(7000) });
      const store = await LocalStore.open(sb.store);
      await store.save(requestFor('v1', v1));
      await store.save(requestFor('v2', v2));
      expect(await blobFiles(sb.store)).toHaveLength(22);

      const snap = await store.snapshot();
      expect(snap.entries.map((e) => e.key)).toEqual(['v1', 'v2']);
      expect(snap.blobSizes.size).toBe(22);
      const [e1, e2] = snap.entries;
      expect(e1!.blobs).toHaveLength(21);
      expect(new Set([...e1!.blobs, ...e2!.blobs]).size).toBe(22);
      for (const d of e1!.blobs) {
        const st = await fs.stat(path.join(sb.store, 'blobs', d.slice(0, 2), d));
        expect(snap.blobSizes.get(d)).toBe(st.size);
      }
      const index = JSON.parse(await store.exportIndexJson());
      expect(index.blobs[sha256('version one\n'.repeat(7000))].refs).toBe(1);
      expect(index.blobs[sha256(shared['lib/f0.txt']!)].refs).toBe(2);

      const own1 = sha256('version one\n'.repeat(7000));
      const { removed, freedBytes } = await store.removeMany(['v1', 'not-there']);
      expect(removed).toEqual(['v1']);
      expect(freedBytes).toBe(snap.blobSizes.get(own1));
      expect(await blobFiles(sb.store)).toEqual([...e2!.blobs].sort());
      expect((await store.verify({ deep: true })).ok).toBe(true);

      expect((await store.removeMany(['v2'])).removed).toEqual(['v2']);
      expect(await blobFiles(sb.store)).toEqual([]);
      expect(JSON.parse(await store.exportIndexJson())).toMatchObject({ entries: [], blobs: {} });
    }));

  it('removeMany frees a shared blob only with the last entry using it', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      for (const key of ['a', 'b', 'c']) {
        const dir = path.join(sb.ws, key);
        await writeContent(dir, contentFor(key));
        await store.save(requestFor(key, dir));
      }
      const snap = await store.snapshot();
      const shared = snap.entries[0]!.blobs.filter((d) => snap.entries[1]!.blobs.includes(d));
      expect(shared).toHaveLength(3);
      const r = await store.removeMany(['a', 'b']);
      expect(r.removed.sort()).toEqual(['a', 'b']);
      for (const d of shared) expect((await store.snapshot()).blobSizes.has(d)).toBe(true);
      const last = await store.removeMany(['c']);
      const expected = [...snap.blobSizes.entries()]
        .filter(([d]) => snap.entries[2]!.blobs.includes(d))
        .reduce((a, [, s]) => a + s, 0);
      expect(last.freedBytes).toBe(expected);
      expect(await blobFiles(sb.store)).toEqual([]);
    }));
});

describe('the binary index', () => {
  it('round-trips, and refuses every kind of damage', () => {
    const ix = new StoreIndex();
    const d = (i: number): string => sha256(`blob ${i}`);
    ix.add(
      entry('clé-ü', [d(1), d(2)]),
      new Map([
        [d(1), 10],
        [d(2), 20],
      ]),
    );
    ix.add(entry('b', [d(2), d(3)]), new Map([[d(3), 30]]));
    ix.generation = 7;
    const buf = encodeIndex(ix);
    const back = decodeIndex(buf);
    expect(back.generation).toBe(7);
    expect(back.sortedEntries()).toEqual(ix.sortedEntries());
    expect([...back.blobs]).toEqual([...ix.blobs]);
    expect(back.blobs.get(d(2))).toEqual({ size: 20, refs: 2 });

    expect(() => decodeIndex(buf.subarray(0, buf.length - 1))).toThrow(/bytes where/);
    for (let at = 0; at < buf.length; at += 7) {
      const bad = Buffer.from(buf);
      bad[at] = (bad[at] ?? 0) ^ 0x40;
      expect(() => decodeIndex(bad)).toThrow();
    }
  });

  it('another process’s writes are seen without reopening', () =>
    withSandbox(async (sb) => {
      const a = await LocalStore.open(sb.store);
      const b = await LocalStore.open(sb.store);
      const dir = path.join(sb.ws, 'x');
      await writeContent(dir, contentFor('x'));
      await a.save(requestFor('x', dir));
      expect((await b.get('x'))?.key).toBe('x');
      await b.touch('x');
      const touched = (await a.snapshot()).entries[0]!;
      expect(touched.lastAccessAt).toBeGreaterThanOrEqual(touched.createdAt);
      expect(Date.parse((await a.get('x'))!.lastAccessAt)).toBe(touched.lastAccessAt);
      await b.remove('x');
      expect(await a.list()).toEqual([]);
    }));

  it('loads 10k entries and a million blobs (time printed, not asserted)', () =>
    withSandbox(async (sb) => {
      const ix = new StoreIndex();
      const digest = (i: number): string => i.toString(16).padStart(64, '0');
      const BLOBS = 1_000_000;
      const ENTRIES = 10_000;
      const PER_ENTRY = 100;
      const sizes = new Map<string, number>();
      for (let i = 0; i < BLOBS; i++) sizes.set(digest(i), i % 5000);
      for (let e = 0; e < ENTRIES; e++) {
        // every blob used by one entry, and the last one shared by all
        const blobs: string[] = [];
        for (let j = 0; j < PER_ENTRY; j++) blobs.push(digest(e * PER_ENTRY + j));
        if (e < ENTRIES - 1) blobs.push(digest(BLOBS - 1));
        ix.add(entry(`clyde-pkg-${e}`, blobs, 1_700_000_000_000 + e), sizes);
      }
      await fs.mkdir(sb.store, { recursive: true });
      let t = performance.now();
      const buf = encodeIndex(ix);
      const encodeMs = performance.now() - t;
      await fs.writeFile(path.join(sb.store, 'index.bin'), buf);

      t = performance.now();
      const store = await LocalStore.open(sb.store);
      const openMs = performance.now() - t;
      t = performance.now();
      const snap = await store.snapshot();
      const snapshotMs = performance.now() - t;
      process.stdout.write(
        `index: ${ix.entries.size} entries, ${ix.blobs.size} blobs, ${(buf.length / 1e6).toFixed(1)} MB; encode ${encodeMs.toFixed(0)} ms, open ${openMs.toFixed(0)} ms, snapshot ${snapshotMs.toFixed(0)} ms\n`,
      );
      expect(snap.blobSizes.size).toBe(BLOBS);
      expect(snap.entries.length).toBe(ix.entries.size);
      const first = snap.entries.find((e) => e.key === 'clyde-pkg-0')!;
      expect(snap.entries).toHaveLength(ENTRIES);
      expect(first.blobs).toHaveLength(PER_ENTRY + 1);
      expect(snap.blobSizes.get(digest(4999))).toBe(4999);
      const json = JSON.parse(await store.exportIndexJson());
      expect(json.blobs[digest(BLOBS - 1)].refs).toBe(ENTRIES);
    }));
});
