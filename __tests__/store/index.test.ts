/**
 * The index: reference counts (shared blobs freed only with their last entry), snapshot(),
 * removeMany(), the binary format and its checks, processes seeing each other's writes, the
 * access journal (touches without rewrites), and a 10k-entry / 1M-blob store: load, snapshot,
 * touch, save and remove checked for correctness, their times printed (not asserted).
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { LAYOUT_VERSION } from '../../src/store/store-layout.js';
import { JOURNAL_NAME, touchRecord } from '../../src/store/access-journal.js';
import { decodeIndex, encodeIndex, StoreIndex, type NewEntry } from '../../src/store/index-file.js';
import { sha256 } from '../../src/util/bytes.js';
import { contentFor, requestFor, writeContent } from '../../test-support/store/fixtures.js';
import { writeTree, withSandbox } from './helpers.js';

async function blobFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(path.join(root, 'blobs'))) {
    out.push(...(await fs.readdir(path.join(root, 'blobs', d))));
  }
  return out.sort();
}

function entry(key: string, blobs: string[], at = 1_700_000_000_000): NewEntry {
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

/** What an index holds, in plain values (entries with blob names, live blobs by name). */
function contents(ix: StoreIndex): unknown {
  return {
    entries: ix.sortedEntries().map((e) => {
      const { slots, ...fields } = e;
      return { ...fields, blobs: ix.blobNames(e), refs: slots.length };
    }),
    blobs: [...ix.blobs].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  };
}

describe('the binary index', () => {
  it('round-trips, compacts freed blobs, and refuses every kind of damage', () => {
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
    ix.add(entry('gone', [d(4), d(1)]), new Map([[d(4), 40]]));
    expect(ix.delete('gone')?.freed).toEqual(new Map([[d(4), 40]]));
    ix.generation = 7;
    const buf = encodeIndex(ix);
    const back = decodeIndex(buf);
    expect(back.generation).toBe(7);
    expect(contents(back)).toEqual(contents(ix));
    expect(back.blobs.size).toBe(3);
    expect(back.blobs.get(d(2))).toEqual({ size: 20, refs: 2 });
    expect(back.blobs.get(d(3))).toEqual({ size: 30, refs: 1 });
    expect(back.blobs.get(d(4))).toBeUndefined();
    // a freed blob comes back to life with its new size
    ix.add(entry('again', [d(4)]), new Map([[d(4), 44]]));
    expect(decodeIndex(encodeIndex(ix)).blobs.get(d(4))).toEqual({ size: 44, refs: 1 });
    expect(() => ix.add(entry('twice', [d(1), d(1)]), new Map())).toThrow(/twice/);
    expect(() => ix.add(entry('unsized', [d(9)]), new Map())).toThrow(/no size/);
    // blobs are digests: a locator of the earlier layout (`<digest>.loc`) is not a blob name
    expect(() => ix.add(entry('locator', [`${d(5)}.loc`]), new Map([[`${d(5)}.loc`, 5]]))).toThrow(
      /bad blob name/,
    );
    expect(['twice', 'unsized', 'locator'].some((k) => ix.entries.has(k))).toBe(false);

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
});

describe('the access journal', () => {
  it('keeps every touch of many instances at once, skips a torn append, and is folded into index.bin by the next write', () =>
    withSandbox(async (sb) => {
      const seed = await LocalStore.open(sb.store);
      for (const key of ['a', 'b']) {
        const dir = path.join(sb.ws, key);
        await writeContent(dir, contentFor(key));
        await seed.save(requestFor(key, dir));
      }
      const indexPath = path.join(sb.store, 'index.bin');
      const journal = path.join(sb.store, JOURNAL_NAME);
      const indexBefore = await fs.readFile(indexPath);
      const saved = (await seed.snapshot()).entries.find((e) => e.key === 'a')!.lastAccessAt;

      const stores = await Promise.all([0, 1, 2, 3].map(() => LocalStore.open(sb.store)));
      await new Promise((r) => setTimeout(r, 5));
      await Promise.all(stores.flatMap((s) => [s.touch('a'), s.touch('a'), s.touch('nope')]));
      // touches rewrite nothing
      expect((await fs.readFile(indexPath)).equals(indexBefore)).toBe(true);
      const records = (await fs.readFile(journal)).length;
      // (a key the index does not hold is not journalled)
      expect(records).toBe(8 * touchRecord('a', 0).length);
      const touched = (await seed.snapshot()).entries.find((e) => e.key === 'a')!.lastAccessAt;
      expect(touched).toBeGreaterThan(saved);
      expect(Date.parse((await seed.get('a'))!.lastAccessAt)).toBe(touched);

      // a torn append (a crash mid-write), then a good record after it
      const late = touched + 60_000;
      const rec = touchRecord('b', late);
      await fs.appendFile(journal, Buffer.concat([rec.subarray(0, 13), touchRecord('b', late)]));
      const fresh = await LocalStore.open(sb.store);
      const snap = await fresh.snapshot();
      expect(snap.entries.map((e) => [e.key, e.lastAccessAt])).toEqual([
        ['a', touched],
        ['b', late],
      ]);

      // a removal writes the index: the times are in index.bin, with or without the journal
      const dir = path.join(sb.ws, 'c');
      await writeContent(dir, contentFor('c'));
      await fresh.save(requestFor('c', dir));
      await fresh.remove('c');
      await fs.rm(journal);
      const folded = (await (await LocalStore.open(sb.store)).snapshot()).entries;
      expect(folded.map((e) => [e.key, e.lastAccessAt])).toEqual([
        ['a', touched],
        ['b', late],
      ]);
      expect((await fresh.verify()).ok).toBe(true);
    }));

  it('an index rebuilt from the entries keeps the journal’s touches', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const dir = path.join(sb.ws, 'a');
      await writeContent(dir, contentFor('a'));
      await store.save(requestFor('a', dir));
      await new Promise((r) => setTimeout(r, 5));
      await store.touch('a');
      const touched = (await store.snapshot()).entries[0]!.lastAccessAt;
      await fs.rm(path.join(sb.store, 'index.bin'));
      const rebuilt = await LocalStore.open(sb.store);
      expect((await rebuilt.snapshot()).entries[0]!.lastAccessAt).toBe(touched);
    }));
});

describe('a store of 10k entries and a million blobs', () => {
  const BLOBS = 1_000_000;
  const ENTRIES = 10_000;
  const PER_ENTRY = 100;
  const digest = (i: number): string => i.toString(16).padStart(64, '0');
  const sizeOf = (d: string): number => parseInt(d, 16) % 5000;

  /** index.bin of the synthetic store (built here so that the builder's heap is gone after). */
  function build(times: string[]): Buffer {
    const ix = new StoreIndex();
    for (let e = 0; e < ENTRIES; e++) {
      // every blob used by one entry, and the last one shared by all
      const blobs: string[] = [];
      for (let j = 0; j < PER_ENTRY; j++) blobs.push(digest(e * PER_ENTRY + j));
      if (e < ENTRIES - 1) blobs.push(digest(BLOBS - 1));
      const sizes = new Map(blobs.map((d) => [d, sizeOf(d)]));
      ix.add(entry(`clyde-pkg-${e}`, blobs, 1_700_000_000_000 + e), sizes);
    }
    const t = performance.now();
    const buf = encodeIndex(ix);
    times.push(`encode ${(performance.now() - t).toFixed(0)} ms`);
    return buf;
  }

  it('loads, snapshots, touches, saves and removes correctly (times printed, not asserted)', () =>
    withSandbox(async (sb) => {
      const times: string[] = [];
      const timed = async <T>(what: string, fn: () => Promise<T> | T): Promise<T> => {
        const t = performance.now();
        const out = await fn();
        times.push(`${what} ${(performance.now() - t).toFixed(0)} ms`);
        return out;
      };
      await fs.mkdir(sb.store, { recursive: true });
      const bytes = await (async () => {
        const buf = build(times);
        await fs.writeFile(path.join(sb.store, 'index.bin'), buf);
        await fs.writeFile(path.join(sb.store, 'layout'), `${LAYOUT_VERSION}\n`);
        return buf.length;
      })();

      const store = await timed('open', () => LocalStore.open(sb.store));
      const snap = await timed('snapshot', () => store.snapshot());
      await timed('snapshot again', () => store.snapshot());
      expect(snap.entries).toHaveLength(ENTRIES);
      expect(snap.blobSizes.size).toBe(BLOBS);
      const first = snap.entries.find((e) => e.key === 'clyde-pkg-0')!;
      expect(first.blobs).toEqual(
        [...Array(PER_ENTRY).keys()].map(digest).concat(digest(BLOBS - 1)),
      );
      expect(first).toMatchObject({
        createdAt: 1_700_000_000_000,
        lastAccessAt: 1_700_000_000_001,
      });
      expect(snap.blobSizes.get(digest(4999))).toBe(4999);
      expect(snap.blobSizes.get(digest(BLOBS))).toBeUndefined();
      let total = 0;
      let count = 0;
      for (const [d, size] of snap.blobSizes) {
        total += size;
        if (count++ < 3) expect(sizeOf(d)).toBe(size);
      }
      // 200 runs of 0..4999
      expect(total).toBe((BLOBS / 5000) * ((4999 * 5000) / 2));

      // a touch: one journal append, seen by another instance and by the snapshot
      const key = 'clyde-pkg-42';
      await timed('touch', () => store.touch(key));
      await timed('touch again', () => store.touch(key));
      const other = await timed('open (another instance)', () => LocalStore.open(sb.store));
      const seen = await timed('snapshot (another instance)', () => other.snapshot());
      const at = seen.entries.find((e) => e.key === key)!.lastAccessAt;
      expect(at).toBeGreaterThan(Date.now() - 60_000);
      expect(seen.entries.find((e) => e.key === 'clyde-pkg-43')!.lastAccessAt).toBe(
        1_700_000_000_044,
      );

      // removing one entry frees exactly its own blobs, not the shared one
      const victim = snap.entries.find((e) => e.key === 'clyde-pkg-7')!;
      const own = victim.blobs.filter((d) => d !== digest(BLOBS - 1));
      const removed = await timed('remove one entry', () => store.removeMany(['clyde-pkg-7']));
      expect(removed.removed).toEqual(['clyde-pkg-7']);
      expect(removed.freedBytes).toBe(own.reduce((a, d) => a + sizeOf(d), 0));
      const after = await timed('snapshot after remove', () => other.snapshot());
      expect(after.entries).toHaveLength(ENTRIES - 1);
      expect(after.blobSizes.size).toBe(BLOBS - PER_ENTRY);
      for (const d of own) expect(after.blobSizes.has(d)).toBe(false);
      expect(after.blobSizes.get(digest(BLOBS - 1))).toBe((BLOBS - 1) % 5000);
      // the touch was folded into index.bin by the removal
      await fs.rm(path.join(sb.store, JOURNAL_NAME), { force: true });
      const reopened = await LocalStore.open(sb.store);
      const folded = await reopened.snapshot();
      expect(folded.entries.find((e) => e.key === key)!.lastAccessAt).toBe(at);
      expect(folded.blobSizes.size).toBe(BLOBS - PER_ENTRY);

      // a real save into the big store
      const dir = path.join(sb.ws, 'new');
      await writeContent(dir, contentFor('new'));
      const saved = await timed('save one entry', () => reopened.save(requestFor('new', dir)));
      expect(saved.created).toBe(true);
      const withNew = await other.snapshot();
      expect(withNew.entries).toHaveLength(ENTRIES);
      expect(withNew.blobSizes.size).toBe(BLOBS - PER_ENTRY + 5);
      await timed('remove the saved entry', () => other.remove('new'));
      expect((await reopened.snapshot()).blobSizes.size).toBe(BLOBS - PER_ENTRY);
      const stats = await timed('stats', () => reopened.stats());
      expect(stats).toMatchObject({ entries: ENTRIES - 1, blobs: BLOBS - PER_ENTRY });

      process.stdout.write(
        `index: ${ENTRIES} entries, ${BLOBS} blobs, ${(bytes / 1e6).toFixed(1)} MB; ${times.join(', ')}\n`,
      );
    }));
});
