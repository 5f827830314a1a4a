/**
 * The save side: walk each output root with lstat (never following a symlink), hash and store
 * the files' content as blobs, and describe everything in a manifest. What restore would refuse
 * (symlinks that leave their root, special files) is skipped here with a warning.
 */
import * as core from '@actions/core';
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { sha256, sortBytes } from '../util/bytes.js';
import type { BlobStore } from './blobs.js';
import {
  resolveLink,
  unsafePathReason,
  unsafeTargetReason,
  type ManifestEntry,
  type ManifestRoot,
} from './manifest.js';
import { mapLimit } from './pool.js';
import type { OutputRoot } from './types.js';

/** Files hashed and compressed at once (issue 4 tunes this). */
const FILES_IN_FLIGHT = 8;

export interface SnapshotResult {
  readonly roots: ManifestRoot[];
  readonly newBlobs: number;
  readonly newBytes: number;
  /** digest -> compressed size, for every blob referenced. */
  readonly stored: Map<string, number>;
}

interface PendingFile {
  readonly absPath: string;
  readonly path: string;
  readonly mode: number;
  readonly mtimeMs: number;
}

function perm(st: Stats): number {
  return st.mode & 0o777;
}

/** Lists a directory root: entries in byte order, parents before children. */
async function walkDir(
  rootAbs: string,
  rootName: string,
): Promise<{ entries: (ManifestEntry | PendingFile)[] }> {
  const out: (ManifestEntry | PendingFile)[] = [];
  async function visit(dirAbs: string, rel: string): Promise<void> {
    const names = sortBytes(await fs.readdir(dirAbs));
    for (const name of names) {
      const abs = path.join(dirAbs, name);
      const p = rel === '' ? name : `${rel}/${name}`;
      const why = unsafePathReason(p);
      if (why !== undefined) {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: ${why}`);
        continue;
      }
      let st: Stats;
      try {
        st = await fs.lstat(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished meanwhile
        throw err;
      }
      if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode: perm(st), size: 0, mtimeMs: st.mtimeMs });
        await visit(abs, p);
      } else if (st.isFile()) {
        out.push({ absPath: abs, path: p, mode: perm(st), mtimeMs: st.mtimeMs });
      } else if (st.isSymbolicLink()) {
        const target = await fs.readlink(abs);
        out.push({
          path: p,
          type: 'symlink',
          mode: perm(st),
          size: 0,
          mtimeMs: st.mtimeMs,
          target,
        });
      } else {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: not a file, directory or symlink`);
      }
    }
  }
  await visit(rootAbs, '');
  return { entries: out };
}

/** Drops symlinks that are absolute or resolve outside their root, with a warning each. */
function dropUnsafeLinks(
  rootName: string,
  entries: (ManifestEntry | PendingFile)[],
): (ManifestEntry | PendingFile)[] {
  const links = new Map<string, string>();
  for (const e of entries) {
    if ('type' in e && e.type === 'symlink' && e.target !== undefined) {
      const why = unsafeTargetReason(e.target);
      if (why !== undefined) {
        core.warning(`clyde-cache: not caching symlink ${rootName}/${e.path}: ${why}`);
      } else {
        links.set(e.path, e.target);
      }
    }
  }
  const keep = new Set<string>();
  // Decide on the full set first, then drop: a dropped link only makes others resolve as plain
  // names, which restore validates again anyway.
  for (const p of links.keys()) {
    if (resolveLink(links, p) !== undefined) keep.add(p);
    else
      core.warning(
        `clyde-cache: not caching symlink ${rootName}/${p}: it points outside ${rootName}`,
      );
  }
  return entries.filter((e) => !('type' in e && e.type === 'symlink') || keep.has(e.path));
}

export async function snapshotRoots(
  roots: readonly OutputRoot[],
  blobs: BlobStore,
): Promise<SnapshotResult> {
  const manifestRoots: ManifestRoot[] = [];
  const stored = new Map<string, number>();
  let newBlobs = 0;
  let newBytes = 0;

  // One put per digest, so two identical files in one save count (and write) one blob.
  const putting = new Map<string, Promise<unknown>>();

  async function storeFile(f: PendingFile): Promise<ManifestEntry> {
    const content = await fs.readFile(f.absPath);
    const digest = sha256(content);
    let pending = putting.get(digest);
    if (pending === undefined) {
      pending = blobs.put(digest, content).then(({ stored: size, written }) => {
        stored.set(digest, size);
        if (written) {
          newBlobs++;
          newBytes += size;
        }
      });
      putting.set(digest, pending);
    }
    await pending;
    return {
      path: f.path,
      type: 'file',
      mode: f.mode,
      size: content.length,
      mtimeMs: f.mtimeMs,
      digest,
    };
  }

  for (const root of roots) {
    let st: Stats;
    try {
      st = await fs.lstat(root.absPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      manifestRoots.push({ name: root.name, kind: 'absent', entries: [] });
      continue;
    }
    if (st.isFile()) {
      const file = await storeFile({
        absPath: root.absPath,
        path: '',
        mode: perm(st),
        mtimeMs: st.mtimeMs,
      });
      manifestRoots.push({
        name: root.name,
        kind: 'file',
        mode: file.mode,
        mtimeMs: file.mtimeMs,
        entries: [],
        file,
      });
      continue;
    }
    if (!st.isDirectory()) {
      core.warning(
        `clyde-cache: not caching ${root.name}: it is a symlink or special file, not a directory or file`,
      );
      manifestRoots.push({ name: root.name, kind: 'absent', entries: [] });
      continue;
    }
    const { entries } = await walkDir(root.absPath, root.name);
    const kept = dropUnsafeLinks(root.name, entries);
    const done = await mapLimit(kept, FILES_IN_FLIGHT, async (e) =>
      'type' in e ? e : storeFile(e),
    );
    manifestRoots.push({
      name: root.name,
      kind: 'dir',
      mode: perm(st),
      mtimeMs: st.mtimeMs,
      entries: done,
    });
  }
  return { roots: manifestRoots, newBlobs, newBytes, stored };
}
