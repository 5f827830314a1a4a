/** stats() (entries, blobs, bytes, dedup) and the marker API. */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { contentFor, requestFor, writeContent } from '../../test-support/store/fixtures.js';
import { withSandbox } from './helpers.js';

describe('stats', () => {
  it('counts entries, blobs, bytes and dedup', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const empty = await store.stats();
      expect(empty).toMatchObject({
        entries: 0,
        blobs: 0,
        storedBytes: 0,
        dedupRatio: 1,
      });
      for (const key of ['a', 'b']) {
        const dir = path.join(sb.ws, key);
        await writeContent(dir, contentFor(key));
        await store.save(requestFor(key, dir));
      }
      const s = await store.stats();
      const list = await store.list();
      const snap = await store.snapshot();
      expect(s.entries).toBe(2);
      expect(s.blobs).toBe(7); // 3 shared + 2 own each
      expect(s.logicalBytes).toBe(list.reduce((a, e) => a + e.sizeBytes, 0));
      expect(s.storedBytes).toBe([...snap.blobSizes.values()].reduce((a, b) => a + b, 0));
      expect(s.referencedBytes).toBe(list.reduce((a, e) => a + e.storedBytes, 0));
      expect(s.dedupRatio).toBeGreaterThan(1.4);
      expect(s.spaceRatio).toBeCloseTo(s.logicalBytes / s.storedBytes);
    }));
});

describe('markers', () => {
  it('stores a time per name atomically; unknown names read as undefined', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      expect(await store.readMarker('last-prune')).toBeUndefined();
      await store.writeMarker('last-prune', 1_700_000_000_123);
      expect(await (await LocalStore.open(sb.store)).readMarker('last-prune')).toBe(
        1_700_000_000_123,
      );
      await store.writeMarker('last-prune', 1_700_000_000_999);
      expect(await store.readMarker('last-prune')).toBe(1_700_000_000_999);
      await expect(store.writeMarker('../escape', 1)).rejects.toMatchObject({ name: 'StoreError' });
      await expect(store.readMarker('a/b')).rejects.toMatchObject({ name: 'StoreError' });
      await expect(store.writeMarker('x', Number.NaN)).rejects.toMatchObject({
        name: 'StoreError',
      });
      expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
      // markers are not mistaken for entries
      expect((await store.verify()).strayDirs).toEqual([]);
    }));
});
