/** verify(): what it finds (missing blobs, bad entries, orphans, strays) and what repair does. */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  checkHealthy,
  contentFor,
  requestFor,
  writeContent,
} from '../../test-support/store/fixtures.js';
import { withSandbox, type Sandbox } from './helpers.js';
import { zstdFrame } from '../../test-support/store/zstd.js';

async function seeded(sb: Sandbox, keys: readonly string[]): Promise<LocalStore> {
  const store = await LocalStore.open(sb.store);
  for (const key of keys) {
    const dir = path.join(sb.ws, key);
    await writeContent(dir, contentFor(key));
    await store.save(requestFor(key, dir));
  }
  return store;
}

function blobOf(root: string, content: Buffer): string {
  const d = sha256(content);
  return path.join(root, 'blobs', d.slice(0, 2), d);
}

describe('verify', () => {
  it('passes a healthy store', () =>
    withSandbox(async (sb) => {
      const store = await seeded(sb, ['a', 'b']);
      expect(await store.verify({ deep: true })).toMatchObject({
        ok: true,
        entries: 2,
        blobs: 7,
        problems: [],
        orphanBlobs: [],
        strayDirs: [],
        repaired: false,
      });
    }));

  it('finds a missing blob; repair drops the entries needing it', () =>
    withSandbox(async (sb) => {
      const store = await seeded(sb, ['a', 'b']);
      const own = contentFor('a')['own/data.bin']!;
      await fs.rm(blobOf(sb.store, own));
      const r = await store.verify();
      expect(r.ok).toBe(false);
      expect(r.missingBlobs).toEqual([sha256(own)]);
      await store.verify({ repair: true, orphanMinAgeMs: 0 });
      const health = await checkHealthy(sb.store, sb.base);
      expect(health).toEqual({ keys: ['b'], problems: [] });
      expect(await store.verify()).toMatchObject({ ok: true, orphanBlobs: [], strayDirs: [] });
    }));

  it('finds an entry whose meta.json or artifact is damaged', () =>
    withSandbox(async (sb) => {
      const store = await seeded(sb, ['a', 'b', 'c']);
      const dirOf = async (key: string): Promise<string> => {
        const m = (await store.get(key))!;
        return path.join(sb.store, m.package, m.version, m.hash);
      };
      await fs.writeFile(path.join(await dirOf('a'), 'artifact'), '{"schema":1,"roots":[');
      await fs.writeFile(path.join(await dirOf('b'), 'meta.json'), '{}');
      const r = await store.verify();
      expect(r.ok).toBe(false);
      expect(r.badEntries).toEqual(['a', 'b']);
      await store.verify({ repair: true, orphanMinAgeMs: 0 });
      expect(await checkHealthy(sb.store, sb.base)).toEqual({ keys: ['c'], problems: [] });
      expect(await store.verify()).toMatchObject({ ok: true, orphanBlobs: [], strayDirs: [] });
    }));

  it('reports orphans and strays without failing; repair keeps young orphans by default', () =>
    withSandbox(async (sb) => {
      const store = await seeded(sb, ['a']);
      const orphan = Buffer.from('nobody uses me');
      const p = blobOf(sb.store, orphan);
      await fs.mkdir(path.dirname(p), { recursive: true });
      await fs.writeFile(p, zstdFrame(orphan));
      await fs.mkdir(path.join(sb.store, 'pkg', '1.0.0', 'ab'.repeat(32)), { recursive: true });
      const r = await store.verify();
      expect(r).toMatchObject({
        ok: true,
        orphanBlobs: [sha256(orphan)],
        strayDirs: [`pkg/1.0.0/${'ab'.repeat(32)}`],
      });
      await store.verify({ repair: true });
      expect((await store.verify()).orphanBlobs).toEqual([sha256(orphan)]);
      expect((await store.verify()).strayDirs).toEqual([]);
      await store.verify({ repair: true, orphanMinAgeMs: 0 });
      expect((await store.verify()).orphanBlobs).toEqual([]);
      expect(await checkHealthy(sb.store, sb.base)).toEqual({ keys: ['a'], problems: [] });
    }));
});
