/**
 * The store's layout version (local-store.ts `checkLayout`): a store of the earlier layout (JSON
 * artifacts, locator files, no layout file) is not read: it is a clean miss, said once in the
 * log, and the next prune removes its files, as it removes the unpacked/ copies earlier
 * versions kept for linked restores; a newer layout is refused, not touched.
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { PruneConfig } from '../../src/inputs.js';
import { prunePostStep } from '../../src/prune/post.js';
import { LocalStore } from '../../src/store/index.js';
import { decodeTable } from '../../src/store/table.js';
import { tableManifest } from '../../src/store/table-manifest.js';
import { sha256 } from '../../src/util/bytes.js';
import { captureStdout } from '../key/helpers.js';
import { snapshotTree, withSandbox, writeTree, type Sandbox } from './helpers.js';

const KEY = 'clyde-old';

function request(out: string): Parameters<LocalStore['save']>[0] {
  return {
    key: KEY,
    package: 'pkg',
    version: '1',
    hash: sha256(KEY),
    platform: 'linux-x64',
    variant: 'rel',
    roots: [{ name: 'out', absPath: out }],
  };
}

const PRUNE: PruneConfig = {
  maxSizeBytes: null,
  maxAgeMs: null,
  ttl: { contentMs: null },
  keepVersions: 1,
  cleanupIntervalMs: 0,
};

/**
 * A store as the earlier layout left it: an entry whose artifact is JSON, a locator file beside
 * the blobs, the JSON index of before index.bin, and no layout file. Returns the saved tree.
 */
/** The entry restores as it was saved, the store verifies, and the next prune sweeps nothing. */
async function expectIntactOnce(opened: LocalStore, sb: Sandbox, before: unknown): Promise<void> {
  const dest = path.join(sb.base, 'back', 'out');
  await opened.restore(KEY, [{ name: 'out', absPath: dest }]);
  expect(await snapshotTree(dest)).toEqual(before);
  expect((await opened.verify({ deep: true })).ok).toBe(true);
  let report: Awaited<ReturnType<typeof prunePostStep>> | undefined;
  await captureStdout(async () => {
    report = await prunePostStep(opened, PRUNE, []);
  });
  expect(report?.oldLayout).toBeUndefined();
}

async function earlierStore(sb: Sandbox): Promise<{ out: string; before: unknown }> {
  const out = path.join(sb.ws, 'out');
  const tree: Record<string, string> = {};
  for (let i = 0; i < 20; i++) tree[`lib/f${i}.txt`] = `file ${i}\n`.repeat(i + 1);
  await writeTree(out, tree);
  const before = await snapshotTree(out);
  await (await LocalStore.open(sb.store)).save(request(out));
  const artifact = path.join(sb.store, 'pkg', '1', sha256(KEY), 'artifact');
  const { manifest } = tableManifest(decodeTable(await fs.readFile(artifact)));
  await fs.writeFile(artifact, JSON.stringify(manifest));
  const shard = path.join(sb.store, 'blobs', 'ab');
  await fs.mkdir(shard, { recursive: true });
  await fs.writeFile(path.join(shard, `ab${'0'.repeat(62)}.loc`), 'CLOC');
  await fs.writeFile(path.join(sb.store, 'index.json'), '{}');
  await fs.rm(path.join(sb.store, 'layout'), { force: true });
  return { out, before };
}

describe('the store layout', () => {
  it('a store of the earlier layout is a clean miss, said once, its files removed by the next prune', () =>
    withSandbox(async (sb) => {
      const { out, before } = await earlierStore(sb);
      // Something of the user's beside the store's files is not the store's to move.
      await fs.writeFile(path.join(sb.store, 'notes.txt'), 'mine');

      let store: LocalStore | undefined;
      const log = await captureStdout(async () => {
        store = await LocalStore.open(sb.store);
      });
      const opened = store as LocalStore;
      expect(log.match(/written by an earlier clyde-cache/g)).toHaveLength(1);
      expect(await opened.get(KEY)).toBeUndefined();
      expect(await opened.list()).toEqual([]);
      expect((await fs.readdir(sb.store)).sort()).toEqual([
        'blobs',
        'index.bin',
        'layout',
        'notes.txt',
        'old-layout',
        'tmp',
      ]);
      // said once: the next open finds the current layout
      expect(await captureStdout(async () => void (await LocalStore.open(sb.store)))).not.toMatch(
        /earlier clyde-cache/,
      );

      // the same key saves and restores again, in the new layout
      expect((await opened.save(request(out))).created).toBe(true);
      let report: Awaited<ReturnType<typeof prunePostStep>> | undefined;
      const pruneLog = await captureStdout(async () => {
        report = await prunePostStep(opened, PRUNE, []);
      });
      expect(report?.status).toBe('pruned');
      // meta.json, artifact, index.bin, index.json, the locator and the blobs
      expect(report?.oldLayout?.files).toBeGreaterThanOrEqual(6);
      expect(pruneLog).toMatch(/file\(s\) of an older store layout removed/);
      expect(await fs.readdir(sb.store)).not.toContain('old-layout');
      expect(await fs.readFile(path.join(sb.store, 'notes.txt'), 'utf8')).toBe('mine');
      await expectIntactOnce(opened, sb, before);
    }));

  it('the unpacked/ copies of earlier linked restores are left alone on open and go with the next prune', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'a.txt': 'alpha\n', 'lib/b.txt': 'beta\n' });
      const before = await snapshotTree(out);
      await (await LocalStore.open(sb.store)).save(request(out));
      // What a hard-link restore of an earlier version left: read-only copies under unpacked/,
      // one of them still linked into a workspace.
      const copies = path.join(sb.store, 'unpacked', 'ab');
      await fs.mkdir(copies, { recursive: true });
      const linkedCopy = path.join(copies, `ab${'0'.repeat(62)}.444`);
      await fs.writeFile(linkedCopy, 'alpha\n', { mode: 0o444 });
      await fs.writeFile(path.join(copies, `ab${'1'.repeat(62)}.444`), 'beta\n', { mode: 0o444 });
      const workspaceFile = path.join(sb.base, 'linked.txt');
      await fs.link(linkedCopy, workspaceFile);

      let store: LocalStore | undefined;
      const log = await captureStdout(async () => {
        store = await LocalStore.open(sb.store);
      });
      const opened = store as LocalStore;
      expect(log).not.toMatch(/earlier clyde-cache/);
      expect((await opened.get(KEY))?.key).toBe(KEY);
      expect(await fs.readdir(sb.store)).toContain('unpacked');

      let report: Awaited<ReturnType<typeof prunePostStep>> | undefined;
      const pruneLog = await captureStdout(async () => {
        report = await prunePostStep(opened, PRUNE, []);
      });
      expect(report?.status).toBe('pruned');
      expect(report?.oldLayout).toEqual({ files: 2, bytes: 11 });
      expect(pruneLog).toMatch(/2 file\(s\) of an older store layout removed/);
      expect(await fs.readdir(sb.store)).not.toContain('unpacked');
      expect(await fs.readdir(sb.store)).not.toContain('old-layout');
      expect(await fs.readdir(path.join(sb.store, 'tmp'))).toEqual([]);
      // The workspace's link keeps its file; the entry is as it was.
      expect(await fs.readFile(workspaceFile, 'utf8')).toBe('alpha\n');
      await expectIntactOnce(opened, sb, before);
    }));

  it('a store of a newer layout is refused and left as it is', () =>
    withSandbox(async (sb) => {
      await fs.mkdir(sb.store, { recursive: true });
      await fs.writeFile(path.join(sb.store, 'layout'), '99\n');
      await fs.writeFile(path.join(sb.store, 'index.bin'), 'a newer index');
      await expect(LocalStore.open(sb.store)).rejects.toMatchObject({
        name: 'StoreError',
        message: expect.stringMatching(/layout 99, written by a newer clyde-cache/),
      });
      expect(await fs.readFile(path.join(sb.store, 'index.bin'), 'utf8')).toBe('a newer index');
    }));
});
