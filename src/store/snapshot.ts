/**
 * The save side: walk each output root with lstat (never following a symlink), hash and store
 * the files' content as blobs (in worker threads, pool.ts), and describe everything in a
 * manifest. What restore would refuse
 * (symlinks that leave their root, special files) is skipped here with a warning.
 */
import * as core from '@actions/core';
import { lstatSync, readdirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { sortBytes } from '../util/bytes.js';
import { StoreError } from '../errors.js';
import type { BlobStore, Location } from './blobs.js';
import {
  resolveLink,
  unsafePathReason,
  unsafeTargetReason,
  type ManifestEntry,
  type ManifestRoot,
} from './manifest.js';
import { CLOCK_LAG_MS, type StatCacheFile, type StatLookup, type StatRecord } from './statcache.js';
import type { OutputRoot } from './types.js';

/** Files below this size are grouped with others of the same save (they compress far better). */
export const SMALL_FILE = 64 * 1024;
/** Content per group blob. */
export const GROUP_BYTES = 1024 * 1024;
/** Content per job of standalone files sent to one worker. */
const JOB_BYTES = 4 * 1024 * 1024;

/** What a save did, counted (the 1%-changed save is judged by these). */
export interface SaveStats {
  /** Regular files in the saved roots. */
  readonly files: number;
  /** Files whose digest came from the stat cache (size, mtime and inode unchanged): not read. */
  readonly reused: number;
  /** Files read and hashed. */
  readonly read: number;
  readonly bytesRead: number;
  /** Blobs (standalone, group, locator) written and their bytes on disk. */
  readonly blobsWritten: number;
  readonly bytesWritten: number;
  /** Group blobs written, and standalone blobs stored as they are (incompressible). */
  readonly groups: number;
  readonly rawBlobs: number;
}

export interface SnapshotResult {
  readonly roots: ManifestRoot[];
  readonly newBlobs: number;
  readonly newBytes: number;
  /** digest -> compressed size, for every blob referenced (groups count once, under the group). */
  readonly stored: Map<string, number>;
  /** Where the grouped files of this save live (the locator to write). */
  readonly locations: Map<string, Location>;
  readonly stats: SaveStats;
  /** The stat records of every file saved, for the next save's stat cache. */
  readonly statCache: StatCacheFile;
}

/** What the previous entry of the package tells this save. */
export interface Basis {
  readonly stat: StatLookup;
  /** Grouped content already in the store: digest -> where. */
  readonly locations: ReadonlyMap<string, Location>;
}

interface PendingFile {
  readonly absPath: string;
  readonly path: string;
  readonly mode: number;
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

function perm(st: Stats): number {
  return st.mode & 0o777;
}

function isPending(e: ManifestEntry | PendingFile): e is PendingFile {
  return !('type' in e);
}

/**
 * Lists a directory root: entries in byte order, parents before children. Synchronous: one
 * save walks alone, and sync lstat is several times faster than the promise form per file.
 */
function walkDir(rootAbs: string, rootName: string): (ManifestEntry | PendingFile)[] {
  const out: (ManifestEntry | PendingFile)[] = [];
  function visit(dirAbs: string, rel: string): void {
    const names = sortBytes(readdirSync(dirAbs));
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
        st = lstatSync(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished meanwhile
        throw err;
      }
      if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode: perm(st), size: 0, mtimeMs: st.mtimeMs });
        visit(abs, p);
      } else if (st.isFile()) {
        out.push({
          absPath: abs,
          path: p,
          mode: perm(st),
          mtimeMs: st.mtimeMs,
          size: st.size,
          ino: st.ino,
        });
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(abs);
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
  visit(rootAbs, '');
  return out;
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

interface PutResult {
  readonly digest: string;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly raw?: boolean;
  readonly known?: boolean;
}

interface GroupResult {
  readonly group: string | null;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly members: { digest: string; size: number; offset: number }[];
}

/** One root as walked: its manifest shell and the files still to be stored. */
interface WalkedRoot {
  readonly root: OutputRoot;
  readonly kind: 'dir' | 'file' | 'absent';
  readonly mode?: number;
  readonly mtimeMs?: number;
  readonly entries: (ManifestEntry | PendingFile)[];
}

function walkRoot(root: OutputRoot): WalkedRoot {
  let st: Stats;
  try {
    st = lstatSync(root.absPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { root, kind: 'absent', entries: [] };
  }
  if (st.isFile()) {
    const file: PendingFile = {
      absPath: root.absPath,
      path: '',
      mode: perm(st),
      mtimeMs: st.mtimeMs,
      size: st.size,
      ino: st.ino,
    };
    return { root, kind: 'file', mode: file.mode, mtimeMs: file.mtimeMs, entries: [file] };
  }
  if (!st.isDirectory()) {
    core.warning(
      `clyde-cache: not caching ${root.name}: it is a symlink or special file, not a directory or file`,
    );
    return { root, kind: 'absent', entries: [] };
  }
  const entries = dropUnsafeLinks(root.name, walkDir(root.absPath, root.name));
  return { root, kind: 'dir', mode: perm(st), mtimeMs: st.mtimeMs, entries };
}

/**
 * Walks the roots and stores their files: unchanged files (stat cache) are not read; the rest
 * are hashed and compressed by the worker pool, small files grouped into shared blobs, large
 * ones streamed. Jobs go out largest first so the two workers finish together.
 */
export async function snapshotRoots(
  roots: readonly OutputRoot[],
  blobs: BlobStore,
  basis?: Basis,
  groupSmall = false,
): Promise<SnapshotResult> {
  // A change after our lstat gets an mtime of at least this (statcache.ts).
  const recordedAt = Date.now() - CLOCK_LAG_MS;
  const walked = roots.map(walkRoot);
  const stored = new Map<string, number>();
  const locations = new Map<string, Location>();
  const digests = new Map<PendingFile, { digest: string; size: number }>();
  const counted = new Set<string>();
  let newBlobs = 0;
  let newBytes = 0;
  let reused = 0;
  let read = 0;
  let bytesRead = 0;
  let groups = 0;
  let rawBlobs = 0;

  const note = (name: string, size: number, written: boolean): void => {
    stored.set(name, size);
    if (written && !counted.has(name)) {
      counted.add(name);
      newBlobs++;
      newBytes += size;
    }
  };

  // Unchanged files: their digest is reused when their content is still in the store.
  const small: PendingFile[] = [];
  const large: PendingFile[] = [];
  const groupSeen = new Map<string, number | undefined>();
  for (const w of walked) {
    for (const e of w.entries) {
      if (!isPending(e)) continue;
      const d = basis?.stat.digestOf(w.root, e.path, e.size, e.mtimeMs, e.ino);
      if (d !== undefined) {
        const loc = basis?.locations.get(d);
        let size: number | undefined;
        if (loc !== undefined) {
          if (!groupSeen.has(loc.group)) groupSeen.set(loc.group, ownSizeSync(blobs, loc.group));
          size = groupSeen.get(loc.group);
          if (size !== undefined) {
            locations.set(d, loc);
            blobs.remember(d, loc);
            stored.set(loc.group, size);
          }
        } else {
          size = ownSizeSync(blobs, d);
          if (size !== undefined) stored.set(d, size);
        }
        if (size !== undefined) {
          digests.set(e, { digest: d, size: e.size });
          reused++;
          continue;
        }
      }
      (groupSmall && e.size < SMALL_FILE ? small : large).push(e);
    }
  }

  // Jobs: groups of small files (walk order keeps related files together), batches of large.
  const known: string[] = [];
  for (const [d, loc] of basis?.locations ?? []) {
    if (!groupSeen.has(loc.group)) groupSeen.set(loc.group, ownSizeSync(blobs, loc.group));
    if (groupSeen.get(loc.group) !== undefined) known.push(d);
  }
  const pool = blobs.pool();
  const dirs = blobs.dirs;
  const jobs: { bytes: number; run: () => Promise<void> }[] = [];
  for (let i = 0; i < small.length;) {
    const members: PendingFile[] = [];
    let bytes = 0;
    while (i < small.length && bytes < GROUP_BYTES) {
      const f = small[i++] as PendingFile;
      members.push(f);
      bytes += f.size;
    }
    jobs.push({
      bytes,
      run: async () => {
        const r = await pool.run<GroupResult>('putGroup', {
          dirs,
          files: members.map((f) => ({ abs: f.absPath, size: f.size })),
          known,
        });
        if (r.group !== null) {
          note(r.group, r.stored, r.written);
          if (r.written) groups++;
        }
        r.members.forEach((m, k) => {
          const f = members[k] as PendingFile;
          read++;
          bytesRead += m.size;
          digests.set(f, { digest: m.digest, size: m.size });
          const loc =
            m.offset >= 0 && r.group !== null
              ? { group: r.group, groupSize: r.size, offset: m.offset, size: m.size }
              : basis?.locations.get(m.digest);
          if (loc === undefined) throw new StoreError(`no location for ${f.absPath}`);
          if (!locations.has(m.digest)) locations.set(m.digest, loc);
          blobs.remember(m.digest, loc);
          if (m.offset < 0) stored.set(loc.group, groupSeen.get(loc.group) ?? 0);
        });
      },
    });
  }
  large.sort((a, b) => b.size - a.size);
  for (let i = 0; i < large.length;) {
    const batch: PendingFile[] = [];
    let bytes = 0;
    while (
      i < large.length &&
      (batch.length === 0 || bytes + (large[i] as PendingFile).size <= JOB_BYTES)
    ) {
      const f = large[i++] as PendingFile;
      batch.push(f);
      bytes += f.size;
    }
    jobs.push({
      bytes,
      run: async () => {
        const rs = await pool.run<PutResult[]>('putFiles', {
          dirs,
          files: batch.map((f) => ({ abs: f.absPath, size: f.size })),
        });
        rs.forEach((r, k) => {
          read++;
          bytesRead += r.size;
          digests.set(batch[k] as PendingFile, { digest: r.digest, size: r.size });
          note(r.digest, r.stored, r.written);
          if (r.written && r.raw) rawBlobs++;
        });
      },
    });
  }
  jobs.sort((a, b) => b.bytes - a.bytes);
  await Promise.all(jobs.map((j) => j.run()));

  const statRoots: StatCacheFile['roots'] = {};
  const manifestRoots: ManifestRoot[] = walked.map((w) => {
    const files: Record<string, StatRecord> = {};
    const done = w.entries.map((e): ManifestEntry => {
      if (!isPending(e)) return e;
      const d = digests.get(e);
      if (d === undefined) throw new StoreError(`file ${e.absPath} was not stored`);
      files[e.path] = [d.size, e.mtimeMs, e.ino, d.digest];
      return {
        path: e.path,
        type: 'file',
        mode: e.mode,
        size: d.size,
        mtimeMs: e.mtimeMs,
        digest: d.digest,
      };
    });
    if (w.kind !== 'absent') statRoots[w.root.name] = { abs: path.resolve(w.root.absPath), files };
    if (w.kind === 'absent') return { name: w.root.name, kind: 'absent', entries: [] };
    if (w.kind === 'file') {
      const file = { ...(done[0] as ManifestEntry), path: '' };
      return {
        name: w.root.name,
        kind: 'file',
        mode: file.mode,
        mtimeMs: file.mtimeMs,
        entries: [],
        file,
      };
    }
    return {
      name: w.root.name,
      kind: 'dir',
      mode: w.mode as number,
      mtimeMs: w.mtimeMs as number,
      entries: done,
    };
  });

  const files = [...digests.keys()].length;
  return {
    roots: manifestRoots,
    newBlobs,
    newBytes,
    stored,
    locations,
    stats: {
      files,
      reused,
      read,
      bytesRead,
      blobsWritten: newBlobs,
      bytesWritten: newBytes,
      groups,
      rawBlobs,
    },
    statCache: { v: 1, key: '', recordedAt, roots: statRoots },
  };
}

function ownSizeSync(blobs: BlobStore, digest: string): number | undefined {
  try {
    const st = statSync(blobs.pathOf(digest));
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}
