/**
 * Hostile entries: a tampered manifest in the local store, and the same manifests arriving in
 * a pack. Each must be refused with nothing written outside the root and the workspace as it
 * was.
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { PACK_VERSION } from '../../src/store/pack.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  blobOf,
  buildPack as buildAnyPack,
  dirEntry,
  dirManifest,
  fileEntry,
  linkEntry,
  packMeta,
  snapshotTree,
  writeTree,
  type Sandbox,
  withSandbox,
} from './helpers.js';

const PAYLOAD = 'payload';

function buildPack(header: unknown, blobs: Parameters<typeof buildAnyPack>[1]): Buffer {
  return buildAnyPack(header, blobs, { version: PACK_VERSION });
}

/** name -> manifest entries of the root 'out' (whose absPath is <ws>/out). */
function hostileCases(sb: Sandbox): Record<string, Record<string, unknown>[]> {
  return {
    'absolute path': [fileEntry(path.join(sb.outside, 'pwned'), PAYLOAD)],
    'dot-dot path': [fileEntry('../../outside/pwned', PAYLOAD)],
    'dot-dot in the middle': [dirEntry('a'), fileEntry('a/../../../outside/pwned', PAYLOAD)],
    'backslash path': [fileEntry('..\\..\\outside\\pwned', PAYLOAD)],
    'drive letter': [fileEntry('C:/pwned', PAYLOAD)],
    'drive-relative': [fileEntry('C:pwned', PAYLOAD)],
    'NUL in path': [fileEntry('a\0b', PAYLOAD)],
    'empty segment': [dirEntry('a'), fileEntry('a//b', PAYLOAD)],
    'dot segment': [fileEntry('./pwned', PAYLOAD)],
    'symlink pointing out': [linkEntry('escape', '../../outside')],
    'absolute symlink': [linkEntry('escape', sb.outside)],
    'symlink then a file through it': [
      dirEntry('sub'),
      linkEntry('l', 'sub'),
      fileEntry('l/x', PAYLOAD),
    ],
    'dot-dot symlink then a file through it': [
      linkEntry('a', '..'),
      fileEntry('a/outside/pwned', PAYLOAD),
    ],
    'symlink escaping through another symlink': [
      dirEntry('d'),
      linkEntry('d/l', '..'),
      linkEntry('m', 'd/l/..'),
    ],
    'symlink loop': [linkEntry('a', 'b'), linkEntry('b', 'a')],
    'fifo type': [{ path: 'p', type: 'fifo', mode: 0o644, size: 0, mtimeMs: 0 }],
    'device type': [{ path: 'dev', type: 'chardev', mode: 0o644, size: 0, mtimeMs: 0 }],
    'setuid mode': [fileEntry('s', PAYLOAD, 0o4755)],
    'duplicate path': [fileEntry('x', PAYLOAD), fileEntry('x', PAYLOAD)],
    'file without listed parent': [fileEntry('nodir/x', PAYLOAD)],
    'file under a file': [fileEntry('f', PAYLOAD), fileEntry('f/x', PAYLOAD)],
    'bad digest': [{ ...fileEntry('x', PAYLOAD), digest: '../../../outside' }],
  };
}

describe('hostile manifests in the local store', () => {
  it('are refused, nothing written outside, the workspace unchanged', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'payload.txt': PAYLOAD, 'keep.txt': 'keep' });
      const store = await LocalStore.open(sb.store);
      const key = 'clyde-hostile';
      await store.save({
        key,
        package: 'p',
        version: '1',
        hash: sha256(key),
        platform: 'linux',
        variant: 'rel',
        roots: [{ name: 'out', absPath: out }],
        // (Blobs of their own: the JSON manifests below name the payload's digest, and no
        // locator of theirs says where a grouped copy would be.)
        groupSmallFiles: false,
      });
      const artifact = path.join(sb.store, 'p', '1', sha256(key), 'artifact');
      const before = await snapshotTree(sb.ws);
      for (const [name, entries] of Object.entries(hostileCases(sb))) {
        await fs.writeFile(artifact, JSON.stringify(dirManifest(entries)));
        const err = await store.restore(key, [{ name: 'out', absPath: out }]).then(
          () => new Error(`${name}: restored`),
          (e: unknown) => e,
        );
        expect([name, (err as Error).name]).toEqual([name, 'UnsafeEntryError']);
        expect(await fs.readdir(sb.outside)).toEqual([]);
        expect(await snapshotTree(sb.ws)).toEqual(before);
      }
      // the shared blob survived every refusal
      await fs.writeFile(artifact, JSON.stringify(dirManifest([fileEntry('ok.txt', PAYLOAD)])));
      await store.restore(key, [{ name: 'out', absPath: out }]);
      expect(await fs.readFile(path.join(out, 'ok.txt'), 'utf8')).toBe(PAYLOAD);
    }));

  it('a manifest that lies about a shared blob’s size fails without deleting the blob', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'payload.txt': PAYLOAD });
      const store = await LocalStore.open(sb.store);
      const key = 'clyde-liar';
      await store.save({
        key,
        package: 'p',
        version: '1',
        hash: sha256(key),
        platform: 'linux',
        variant: 'rel',
        roots: [{ name: 'out', absPath: out }],
        // a blob of its own, which the lying manifest reaches directly
        groupSmallFiles: false,
      });
      const artifact = path.join(sb.store, 'p', '1', sha256(key), 'artifact');
      const good = await fs.readFile(artifact);
      await fs.writeFile(
        artifact,
        JSON.stringify(dirManifest([{ ...fileEntry('x', PAYLOAD), size: 3 }])),
      );
      await expect(store.restore(key, [{ name: 'out', absPath: out }])).rejects.toMatchObject({
        name: 'StoreError',
      });
      await fs.writeFile(artifact, good);
      await fs.rm(out, { recursive: true });
      await store.restore(key, [{ name: 'out', absPath: out }]);
      expect(await fs.readFile(path.join(out, 'payload.txt'), 'utf8')).toBe(PAYLOAD);
    }));
});

describe('hostile packs', () => {
  it('are refused before any entry exists, nothing written outside', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const payload = blobOf(store.codec, PAYLOAD);
      const pack = path.join(sb.base, 'hostile.pack');
      const before = await snapshotTree(sb.ws);
      let i = 0;
      for (const [name, entries] of Object.entries(hostileCases(sb))) {
        const key = `k-${i++}`;
        const header = { meta: packMeta(key), manifest: dirManifest(entries) };
        await fs.writeFile(pack, buildPack(header, [payload]));
        const err = await store.importPack(pack, key).then(
          () => new Error(`${name}: imported`),
          (e: unknown) => e,
        );
        expect([name, (err as Error).name]).toEqual([name, 'UnsafeEntryError']);
      }
      expect(await store.list()).toEqual([]);
      expect(await fs.readdir(sb.outside)).toEqual([]);
      expect(await snapshotTree(sb.ws)).toEqual(before);
    }));

  it('refuse hostile metadata (a hash that is a path)', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const pack = path.join(sb.base, 'p');
      const header = { meta: packMeta('k', '../../../outside'), manifest: dirManifest([]) };
      await fs.writeFile(pack, buildPack(header, []));
      await expect(store.importPack(pack, 'k')).rejects.toMatchObject({ name: 'StoreError' });
      expect(await fs.readdir(sb.outside)).toEqual([]);
      expect(await store.list()).toEqual([]);
    }));
});
