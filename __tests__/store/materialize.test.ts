/**
 * Materialisation: restored files get the saved modes and the mtimes asked for; awkward names,
 * file and directory roots together; a damaged artifact leaves the workspace untouched.
 */
import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore, type OutputRoot } from '../../src/store/index.js';
import { AT, decodeTable, locationAt, NUMS, ROW } from '../../src/store/table.js';
import { tableManifest } from '../../src/store/table-manifest.js';
import { snapshotTree, writeTree, type Sandbox, withSandbox } from './helpers.js';

const files = {
  'bin/tool': 'tool binary\n'.repeat(500),
  'lib/a.o': 'object a\n'.repeat(300),
  'lib/b.o': 'object b\n'.repeat(300),
};

async function seeded(
  sb: Sandbox,
): Promise<{ store: LocalStore; before: Record<string, unknown> }> {
  const out = path.join(sb.ws, 'out');
  await writeTree(out, files);
  await fs.chmod(path.join(out, 'bin/tool'), 0o755);
  const store = await LocalStore.open(sb.store);
  await saveAs(store, 'k', [{ name: 'out', absPath: out }]);
  return { store, before: await snapshotTree(out) };
}

async function saveAs(store: LocalStore, key: string, roots: OutputRoot[]): Promise<void> {
  await store.save({
    key,
    package: 'pkg',
    version: '1',
    hash: createHash('sha256').update(key).digest('hex'),
    platform: 'linux-x64',
    variant: 'release',
    roots,
    groupSmallFiles: true,
  });
}

describe('materialisation', () => {
  it('copy gives the saved modes', () =>
    withSandbox(async (sb) => {
      const { store, before } = await seeded(sb);
      const dest = path.join(sb.base, 'copy', 'out');
      await store.restore('k', [{ name: 'out', absPath: dest }]);
      expect(await snapshotTree(dest)).toEqual(before);
    }));

  it('mtimeMs gives every file and directory that mtime', () =>
    withSandbox(async (sb) => {
      const { store, before } = await seeded(sb);
      const at = Date.parse('2030-01-02T03:04:05.678Z');
      const dest = path.join(sb.base, 'at', 'out');
      await store.restore('k', [{ name: 'out', absPath: dest }], { mtimeMs: at });
      expect(await snapshotTree(dest)).toEqual(before);
      for (const rel of ['', 'bin', 'lib', 'bin/tool', 'lib/a.o', 'lib/b.o']) {
        expect([rel, (await fs.stat(path.join(dest, rel))).mtimeMs]).toEqual([rel, at]);
      }
    }));

  it('restores awkward names, a file root and a dir root together', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      const single = path.join(sb.ws, 'app.bin');
      await writeTree(out, {
        'line\nbreak.txt': 'newline in the name',
        'sp ace/ünï cødé.js': 'unicode',
        'a/b/c/deep#1.txt': 'deep',
        'empty.txt': '',
        // several write() pieces (store-worker.ts: WRITE_PIECE), not streamed
        'big.bin': Buffer.from(Array.from({ length: 1_300_000 }, (_, i) => i % 251)),
      });
      await fs.writeFile(single, 'one file');
      await fs.chmod(single, 0o750);
      const store = await LocalStore.open(sb.store);
      await saveAs(store, 'k2', [
        { name: 'out', absPath: out },
        { name: 'app.bin', absPath: single },
      ]);
      const before = await snapshotTree(out);
      const dir = path.join(sb.base, 'awkward');
      const res = await store.restore('k2', [
        { name: 'out', absPath: path.join(dir, 'out') },
        { name: 'app.bin', absPath: path.join(dir, 'app.bin') },
      ]);
      expect(res.files).toBe(6);
      expect(await snapshotTree(path.join(dir, 'out'))).toEqual(before);
      expect(await fs.readFile(path.join(dir, 'app.bin'), 'utf8')).toBe('one file');
      expect((await fs.stat(path.join(dir, 'app.bin'))).mode & 0o777).toBe(0o750);
      expect((await fs.readdir(dir)).sort()).toEqual(['app.bin', 'out']);
    }));

  it('a damaged artifact fails the restore with the workspace untouched', () =>
    withSandbox(async (sb) => {
      const { store } = await seeded(sb);
      const entry = path.join(sb.store, 'pkg', '1', createHash('sha256').update('k').digest('hex'));
      const artifact = path.join(entry, 'artifact');
      const good = await fs.readFile(artifact);
      // A grouped file's row, its offset moved one byte on (still inside its group).
      const t = decodeTable(good);
      let row = -1;
      for (let i = 0; i < t.rows && row < 0; i++) {
        const loc = t.nums[i * NUMS] === ROW.file ? locationAt(t, i) : undefined;
        if (loc !== undefined && loc.offset + loc.size < loc.groupSize) row = i;
      }
      expect(row).toBeGreaterThanOrEqual(0);
      const numsAt = t.nums.byteOffset - t.body.byteOffset;
      const shifted = Buffer.from(good);
      const at = numsAt + (row * NUMS + AT.offset) * 8;
      shifted.writeDoubleLE(shifted.readDoubleLE(at) + 1, at);
      const cases: [string, () => Promise<void>, RegExp][] = [
        ['a grouped file placed wrongly', () => fs.writeFile(artifact, shifted), /where its entry/],
        ['a truncated artifact', () => fs.writeFile(artifact, good.subarray(0, 100)), /malformed/],
        [
          'an artifact in the JSON form of earlier stores',
          () => fs.writeFile(artifact, JSON.stringify(tableManifest(decodeTable(good)).manifest)),
          /not a table/,
        ],
      ];
      for (const [what, spoil, why] of cases) {
        await spoil();
        const dir = path.join(sb.base, `broken-${what}`);
        await writeTree(dir, { 'out/mine.txt': 'mine' });
        const mine = await snapshotTree(dir);
        const back = (to: string): Promise<unknown> =>
          store.restore('k', [{ name: 'out', absPath: to }]).then(
            () => new Error('restored'),
            (err: unknown) => err,
          );
        expect([what, String(await back(path.join(dir, 'out')))]).toEqual([
          what,
          expect.stringMatching(why),
        ]);
        expect(await snapshotTree(dir)).toEqual(mine);
        const fresh = path.join(sb.base, `broken-fresh-${what}`);
        await fs.mkdir(fresh);
        expect(String(await back(path.join(fresh, 'out')))).toMatch(why);
        expect(await fs.readdir(fresh)).toEqual([]);
      }
      // The group the wrongly placed file pointed into was sound, and is still there; verify
      // reports the entry, and calls no blob corrupt for it.
      const report = await store.verify({ deep: true });
      expect([report.badEntries, report.corruptBlobs, report.missingBlobs]).toEqual([
        ['k'],
        [],
        [],
      ]);
    }));
});
