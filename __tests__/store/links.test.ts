/**
 * Symlinks that leave their root (issue 16 item 2): kept when they stay inside the workspace
 * (npm and pnpm workspace links, relative or absolute) and restored so that they resolve in the
 * workspace restored into; kept elsewhere only with keep-outside-links, else left out with a
 * warning; an entry carrying one is refused on restore unless this restore may make it; and
 * nothing is ever written through a link.
 */
import { describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { parseManifest } from '../../src/store/manifest.js';
import type { OutputRoot, SaveRequest } from '../../src/store/types.js';
import { sha256 } from '../../src/util/bytes.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { tableOf } from '../../test-support/store/tables.js';
import {
  dirManifest,
  fileEntry,
  linkEntry,
  snapshotTree,
  withSandbox,
  writeTree,
  type Sandbox,
} from './helpers.js';

function request(key: string, roots: readonly OutputRoot[], more: Partial<SaveRequest> = {}) {
  return {
    key,
    package: 'p',
    version: '1',
    hash: sha256(key),
    platform: 'linux',
    variant: 'rel',
    roots,
    ...more,
  };
}

/** An npm workspace under `ws`: packages/a, and node_modules linking to it as npm does. */
async function npmWorkspace(ws: string): Promise<OutputRoot> {
  await writeTree(ws, {
    'packages/a/index.js': 'module.exports = 1;',
    'node_modules/ms/index.js': 'ms',
  });
  const nm = path.join(ws, 'node_modules');
  await fs.symlink('../packages/a', path.join(nm, 'a'));
  await fs.symlink(path.join(ws, 'packages', 'a', 'index.js'), path.join(nm, 'abs-a'));
  await fs.symlink('ms/index.js', path.join(nm, 'inside'));
  return { name: 'node_modules', absPath: nm };
}

/** A second workspace elsewhere (another GITHUB_WORKSPACE), with the same checkout. */
async function otherWorkspace(
  sb: Sandbox,
  name = 'ws2',
): Promise<{ ws: string; root: OutputRoot }> {
  const ws = path.join(sb.base, name);
  await writeTree(ws, { 'packages/a/index.js': 'module.exports = 1;' });
  return { ws, root: { name: 'node_modules', absPath: path.join(ws, 'node_modules') } };
}

describe('symlinks leaving their root', () => {
  it('a link inside the workspace is kept and resolves in another workspace', () =>
    withSandbox(async (sb) => {
      const root = await npmWorkspace(sb.ws);
      const store = await LocalStore.open(sb.store);
      const saved = await store.save(request('k-ws', [root], { workspace: sb.ws }));
      expect(saved.warnings).toEqual([]);
      const other = await otherWorkspace(sb);
      await store.restore('k-ws', [other.root], { workspace: other.ws });
      const nm = other.root.absPath;
      expect(await fs.readlink(path.join(nm, 'a'))).toBe('../packages/a');
      expect(await fs.realpath(path.join(nm, 'a'))).toBe(
        await fs.realpath(path.join(other.ws, 'packages', 'a')),
      );
      // an absolute link into the workspace is re-made for the workspace restored into
      expect(await fs.readlink(path.join(nm, 'abs-a'))).toBe(
        path.join(other.ws, 'packages', 'a', 'index.js'),
      );
      expect(await fs.readFile(path.join(nm, 'abs-a'), 'utf8')).toBe('module.exports = 1;');
      expect(await fs.readlink(path.join(nm, 'inside'))).toBe('ms/index.js');
    }));

  it('a link inside the workspace travels through a pack (the runner cache) too', () =>
    withSandbox(async (sb) => {
      const root = await npmWorkspace(sb.ws);
      const store = await LocalStore.open(sb.store);
      await store.save(request('k-pack', [root], { workspace: sb.ws }));
      const pack = path.join(sb.base, 'entry.pack');
      await store.exportPack('k-pack', pack);
      const fresh = await LocalStore.open(path.join(sb.base, 'store2'));
      // restored straight from the pack into another workspace, then from the store it went to
      const other = await otherWorkspace(sb);
      await restoreAndAdopt(fresh, pack, 'k-pack', {
        roots: [other.root],
        restore: { workspace: other.ws },
      });
      const third = await otherWorkspace(sb, 'ws3');
      await fresh.restore('k-pack', [third.root], { workspace: third.ws });
      for (const ws of [other, third]) {
        expect(await fs.readlink(path.join(ws.root.absPath, 'a'))).toBe('../packages/a');
        expect(await fs.readlink(path.join(ws.root.absPath, 'abs-a'))).toBe(
          path.join(ws.ws, 'packages', 'a', 'index.js'),
        );
      }
    }));

  it('a link leaving the workspace is left out with a warning, kept when opted in', () =>
    withSandbox(async (sb) => {
      const root = await npmWorkspace(sb.ws);
      await fs.symlink(sb.outside, path.join(root.absPath, 'abs-out'));
      await fs.symlink('../../outside', path.join(root.absPath, 'rel-out'));
      const store = await LocalStore.open(sb.store);
      const plain = await store.save(request('k-drop', [root], { workspace: sb.ws }));
      expect(plain.warnings).toEqual([
        expect.stringMatching(
          /not caching 2 symlinks of node_modules pointing outside the workspace .*node_modules\/abs-out -> .*keep-outside-links: true/,
        ),
      ]);
      const kept = await store.save(
        request('k-keep', [root], { workspace: sb.ws, keepOutsideLinks: true }),
      );
      expect(kept.warnings).toEqual([]);

      const other = await otherWorkspace(sb);
      await store.restore('k-drop', [other.root], { workspace: other.ws });
      expect((await fs.readdir(other.root.absPath)).sort()).toEqual(['a', 'abs-a', 'inside', 'ms']);

      // without opting in, the entry holding them is refused, nothing written
      await fs.rm(other.root.absPath, { recursive: true });
      const before = await snapshotTree(other.ws);
      await expect(
        store.restore('k-keep', [other.root], { workspace: other.ws }),
      ).rejects.toMatchObject({
        name: 'UnsafeEntryError',
        message: expect.stringMatching(/abs-out.*outside the workspace.*keep-outside-links/),
      });
      expect(await snapshotTree(other.ws)).toEqual(before);

      await store.restore('k-keep', [other.root], { workspace: other.ws, keepOutsideLinks: true });
      expect(await fs.readlink(path.join(other.root.absPath, 'abs-out'))).toBe(sb.outside);
      expect(await fs.readlink(path.join(other.root.absPath, 'rel-out'))).toBe('../../outside');
      expect(await fs.readdir(sb.outside)).toEqual([]);
    }));

  it('a link whose target is not in normal form is left out, never anchored', () =>
    withSandbox(async (sb) => {
      const root = await npmWorkspace(sb.ws);
      await fs.symlink('../packages/../packages/a', path.join(root.absPath, 'crooked'));
      const store = await LocalStore.open(sb.store);
      const saved = await store.save(request('k-crooked', [root], { workspace: sb.ws }));
      expect(saved.warnings).toEqual([
        expect.stringMatching(/symlink node_modules\/crooked: it points outside node_modules/),
      ]);
    }));
});

/** An entry with a hand-written manifest (its artifact replaced), as a tampered store holds. */
async function tampered(sb: Sandbox, entries: Record<string, unknown>[]): Promise<LocalStore> {
  const out = path.join(sb.ws, 'out');
  await writeTree(out, { 'x.txt': 'payload' });
  const store = await LocalStore.open(sb.store);
  await store.save({
    ...request('k-evil', [{ name: 'out', absPath: out }]),
    groupSmallFiles: false,
  });
  await fs.rm(out, { recursive: true });
  const artifact = path.join(sb.store, 'p', '1', sha256('k-evil'), 'artifact');
  await fs.writeFile(artifact, tableOf(dirManifest(entries)));
  return store;
}

const anchored = (p: string, target: string, anchor: string): Record<string, unknown> => ({
  ...linkEntry(p, target),
  anchor,
});

describe('restore refuses links it may not make', () => {
  it('a link that says it climbs out of the workspace: refused without opting in', () =>
    withSandbox(async (sb) => {
      const store = await tampered(sb, [anchored('l', '../../outside', 'link')]);
      const artifact = path.join(sb.store, 'p', '1', sha256('k-evil'), 'artifact');
      const root = { name: 'out', absPath: path.join(sb.ws, 'out') };
      const before = await snapshotTree(sb.ws);
      for (const entry of [
        anchored('l', '../../outside', 'link'),
        anchored('l', sb.outside, 'absolute'),
        anchored('l', '/', 'absolute'),
      ]) {
        await fs.writeFile(artifact, tableOf(dirManifest([entry])));
        await expect(store.restore('k-evil', [root], { workspace: sb.ws })).rejects.toMatchObject({
          name: 'UnsafeEntryError',
          message: expect.stringMatching(/outside the workspace/),
        });
        expect(await snapshotTree(sb.ws)).toEqual(before);
      }
      // the same link without saying so is refused by the manifest's own rules
      await fs.writeFile(
        path.join(sb.store, 'p', '1', sha256('k-evil'), 'artifact'),
        tableOf(dirManifest([linkEntry('l', '../packages/a')])),
      );
      await expect(store.restore('k-evil', [root], { workspace: sb.ws })).rejects.toMatchObject({
        name: 'UnsafeEntryError',
        message: expect.stringMatching(/points outside its root/),
      });
      expect(await snapshotTree(sb.ws)).toEqual(before);
    }));

  it.each([
    ['a .. after a name', anchored('l', '../a/../../..', 'link')],
    ['a workspace path climbing out', anchored('l', '/../outside', 'workspace')],
    ['a relative workspace path', anchored('l', 'packages/a', 'workspace')],
    ['an absolute link anchor', anchored('l', '/etc', 'link')],
    ['an unknown anchor', anchored('l', '../a', 'anywhere')],
  ])('an anchored link with %s is refused on its face', (_what, entry) => {
    expect(() => parseManifest(dirManifest([entry]))).toThrow(/unsafe entry/);
  });

  it('nothing is written beneath a link, inside the workspace or not', () =>
    withSandbox(async (sb) => {
      await writeTree(sb.ws, { 'packages/a/keep.txt': 'keep' });
      // (a file through an anchored link is refused by the manifest's rules)
      expect(() =>
        parseManifest(
          dirManifest([anchored('l', '../packages/a', 'link'), fileEntry('l/pwned', 'x')]),
        ),
      ).toThrow(/does not sit under a listed directory/);
      // a second root beneath a link of the first
      const store = await tampered(sb, [anchored('l', '../packages/a', 'link')]);
      const artifact = path.join(sb.store, 'p', '1', sha256('k-evil'), 'artifact');
      await fs.writeFile(
        artifact,
        tableOf({
          schema: 1,
          roots: [
            (dirManifest([anchored('l', '../packages/a', 'link')]) as { roots: unknown[] })
              .roots[0],
            (dirManifest([fileEntry('x.txt', 'payload')], 'out/l/sub') as { roots: unknown[] })
              .roots[0],
          ],
        }),
      );
      const roots = [
        { name: 'out', absPath: path.join(sb.ws, 'out') },
        { name: 'out/l/sub', absPath: path.join(sb.ws, 'out', 'l', 'sub') },
      ];
      const before = await snapshotTree(sb.ws);
      await expect(store.restore('k-evil', roots, { workspace: sb.ws })).rejects.toMatchObject({
        name: 'UnsafeEntryError',
        message: expect.stringMatching(/lies beneath the symlink out\/l/),
      });
      expect(await snapshotTree(sb.ws)).toEqual(before);
      // a root beneath a symlink already in the workspace (a link an earlier restore made)
      await fs.mkdir(path.join(sb.ws, 'out'));
      await fs.symlink('../packages/a', path.join(sb.ws, 'out', 'l'));
      await expect(
        store.restore('k-evil', [roots[1] as OutputRoot], { workspace: sb.ws }),
      ).rejects.toMatchObject({
        name: 'UnsafeEntryError',
        message: expect.stringMatching(/beneath .*out\/l, a symlink in the workspace/),
      });
      expect(await fs.readdir(path.join(sb.ws, 'packages', 'a'))).toEqual(['keep.txt']);
      expect(await fs.readdir(sb.outside)).toEqual([]);
    }));
});
