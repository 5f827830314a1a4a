/**
 * The save side: walk each output root with lstat (never following a symlink), hash and store
 * the files' content as blobs (in worker threads, pool.ts), and describe everything in a
 * manifest. What restore would refuse (unsafe paths, symlinks that leave their root, special
 * files) is skipped here with a warning, so the manifest built here passes `parseManifest`.
 *
 * The walk and the workers overlap: jobs go out while the walk goes on (small files in groups
 * of about 1 MiB as they fill, larger files in batches), and the pool hands the largest queued
 * job to the next idle worker, so the two workers finish together.
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
import { STREAM_AT, type PoolDirs, type WorkerPool } from './pool.js';
import {
  CLOCK_LAG_MS,
  StatCacheBuilder,
  type StatCacheFile,
  type StatLookup,
  type StatRecord,
} from './statcache.js';
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
  /** Grouped content of that entry: digest -> where (a hint: checked when read). */
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

/** Lets the event loop run (worker replies, dispatch) during a long synchronous walk. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** Directories walked between two ticks. */
const DIRS_PER_TICK = 16;

/**
 * Lists a directory root: entries in byte order, parents before children, handing each regular
 * file to `onFile` as it is found. Synchronous per directory (sync lstat is several times
 * faster than the promise form per file); it yields now and then so jobs keep flowing.
 */
async function walkDir(
  rootAbs: string,
  rootName: string,
  onFile: (f: PendingFile) => void,
): Promise<(ManifestEntry | PendingFile)[]> {
  const out: (ManifestEntry | PendingFile)[] = [];
  let dirs = 0;
  async function visit(dirAbs: string, rel: string): Promise<void> {
    if (++dirs % DIRS_PER_TICK === 0) await tick();
    const names = sortBytes(readdirSync(dirAbs));
    for (const name of names) {
      const abs = path.join(dirAbs, name);
      const p = rel === '' ? name : `${rel}/${name}`;
      const why = unsafePathReason(p);
      if (why !== undefined) {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: ${why}`);
        continue;
      }
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (st === undefined) continue; // vanished meanwhile
      if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode: perm(st), size: 0, mtimeMs: st.mtimeMs });
        await visit(abs, p);
      } else if (st.isFile()) {
        const f: PendingFile = {
          absPath: abs,
          path: p,
          mode: perm(st),
          mtimeMs: st.mtimeMs,
          size: st.size,
          ino: st.ino,
        };
        out.push(f);
        onFile(f);
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
  await visit(rootAbs, '');
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
  if (links.size === 0) return entries;
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

async function walkRoot(root: OutputRoot, onFile: (f: PendingFile) => void): Promise<WalkedRoot> {
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
    onFile(file);
    return { root, kind: 'file', mode: file.mode, mtimeMs: file.mtimeMs, entries: [file] };
  }
  if (!st.isDirectory()) {
    core.warning(
      `clyde-cache: not caching ${root.name}: it is a symlink or special file, not a directory or file`,
    );
    return { root, kind: 'absent', entries: [] };
  }
  const entries = dropUnsafeLinks(root.name, await walkDir(root.absPath, root.name, onFile));
  return { root, kind: 'dir', mode: perm(st), mtimeMs: st.mtimeMs, entries };
}

/**
 * Decides, file by file as the walk finds them, what each needs (nothing when the stat cache
 * vouches for it; a place in a group; a blob of its own), and sends the work to the pool.
 */
class Planner {
  readonly stored = new Map<string, number>();
  readonly locations = new Map<string, Location>();
  readonly digests = new Map<PendingFile, { digest: string; size: number }>();
  newBlobs = 0;
  newBytes = 0;
  reused = 0;
  read = 0;
  bytesRead = 0;
  groups = 0;
  rawBlobs = 0;
  private readonly counted = new Set<string>();
  private readonly groupSeen = new Map<string, number | undefined>();
  private readonly known: string[] = [];
  private readonly running: Promise<void>[] = [];
  private small: PendingFile[] = [];
  private smallBytes = 0;
  private large: PendingFile[] = [];
  private largeBytes = 0;
  private readonly pool: WorkerPool;
  private readonly dirs: PoolDirs;

  constructor(
    private readonly blobs: BlobStore,
    private readonly basis: Basis | undefined,
    private readonly groupSmall: boolean,
  ) {
    this.pool = blobs.pool();
    this.dirs = blobs.dirs;
    // Grouped content already in the store: workers leave it out of new groups.
    for (const [d, loc] of basis?.locations ?? []) {
      if (this.groupSize(loc.group) !== undefined) this.known.push(d);
    }
  }

  /** Stored size of a group blob (undefined when it is gone), one stat per group. */
  private groupSize(group: string): number | undefined {
    if (!this.groupSeen.has(group)) this.groupSeen.set(group, ownSizeSync(this.blobs, group));
    return this.groupSeen.get(group);
  }

  add(root: OutputRoot, e: PendingFile): void {
    const d = this.basis?.stat.digestOf(root, e.path, e.size, e.mtimeMs, e.ino);
    if (d !== undefined && this.reuse(e, d)) return;
    if (this.groupSmall && e.size < SMALL_FILE) {
      this.small.push(e);
      this.smallBytes += e.size;
      if (this.smallBytes >= GROUP_BYTES) this.flushSmall();
    } else if (e.size >= STREAM_AT) {
      this.runFiles([e], e.size);
    } else {
      this.large.push(e);
      this.largeBytes += e.size;
      if (this.largeBytes >= JOB_BYTES) this.flushLarge();
    }
  }

  /** Sends what is still gathered, then waits for every job. */
  async finish(): Promise<void> {
    this.flushSmall();
    this.flushLarge();
    await Promise.all(this.running);
  }

  /** Waits for the jobs already sent, whatever their outcome (after a failed walk). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }

  private track(job: Promise<void>): void {
    job.catch(() => {}); // handled: finish() or settle() reports it
    this.running.push(job);
  }

  /** An unchanged file whose content is still in the store: true when it needs nothing. */
  private reuse(e: PendingFile, d: string): boolean {
    const loc = this.basis?.locations.get(d);
    if (loc !== undefined) {
      if (loc.size !== e.size) return false;
      const size = this.groupSize(loc.group);
      if (size === undefined) return false;
      this.locations.set(d, loc);
      this.blobs.remember(d, loc);
      this.stored.set(loc.group, size);
    } else {
      const size = ownSizeSync(this.blobs, d);
      if (size === undefined) return false;
      this.stored.set(d, size);
    }
    this.digests.set(e, { digest: d, size: e.size });
    this.reused++;
    return true;
  }

  private note(name: string, size: number, written: boolean): void {
    this.stored.set(name, size);
    if (written && !this.counted.has(name)) {
      this.counted.add(name);
      this.newBlobs++;
      this.newBytes += size;
    }
  }

  private flushSmall(): void {
    if (this.small.length === 0) return;
    const members = this.small;
    const bytes = this.smallBytes;
    this.small = [];
    this.smallBytes = 0;
    this.track(this.runGroup(members, bytes));
  }

  private flushLarge(): void {
    if (this.large.length === 0) return;
    const batch = this.large;
    const bytes = this.largeBytes;
    this.large = [];
    this.largeBytes = 0;
    this.runFiles(batch, bytes);
  }

  private async runGroup(members: PendingFile[], bytes: number): Promise<void> {
    const r = await this.pool.run<GroupResult>(
      'putGroup',
      {
        dirs: this.dirs,
        files: members.map((f) => ({ abs: f.absPath, size: f.size })),
        known: this.known,
      },
      bytes,
    );
    if (r.group !== null) {
      this.note(r.group, r.stored, r.written);
      if (r.written) this.groups++;
    }
    r.members.forEach((m, k) => {
      const f = members[k] as PendingFile;
      this.read++;
      this.bytesRead += m.size;
      this.digests.set(f, { digest: m.digest, size: m.size });
      const loc =
        m.offset >= 0 && r.group !== null
          ? { group: r.group, groupSize: r.size, offset: m.offset, size: m.size }
          : this.basis?.locations.get(m.digest);
      if (loc === undefined) throw new StoreError(`no location for ${f.absPath}`);
      if (!this.locations.has(m.digest)) this.locations.set(m.digest, loc);
      this.blobs.remember(m.digest, loc);
      if (m.offset < 0) this.stored.set(loc.group, this.groupSeen.get(loc.group) ?? 0);
    });
  }

  private runFiles(batch: PendingFile[], bytes: number): void {
    const job = async (): Promise<void> => {
      const rs = await this.pool.run<PutResult[]>(
        'putFiles',
        { dirs: this.dirs, files: batch.map((f) => ({ abs: f.absPath, size: f.size })) },
        bytes,
      );
      rs.forEach((r, k) => {
        this.read++;
        this.bytesRead += r.size;
        this.digests.set(batch[k] as PendingFile, { digest: r.digest, size: r.size });
        this.note(r.digest, r.stored, r.written);
        if (r.written && r.raw) this.rawBlobs++;
      });
    };
    this.track(job());
  }
}

/**
 * Walks the roots and stores their files: unchanged files (stat cache) are not read; the rest
 * are hashed and compressed by the worker pool, small files grouped into shared blobs (unless
 * `groupSmall` is false), large ones streamed.
 */
export async function snapshotRoots(
  roots: readonly OutputRoot[],
  blobs: BlobStore,
  basis?: Basis,
  groupSmall = true,
): Promise<SnapshotResult> {
  // A change after our lstat gets an mtime of at least this (statcache.ts).
  const recordedAt = Date.now() - CLOCK_LAG_MS;
  const plan = new Planner(blobs, basis, groupSmall);
  const walked: WalkedRoot[] = [];
  try {
    for (const root of roots) walked.push(await walkRoot(root, (f) => plan.add(root, f)));
  } catch (err) {
    await plan.settle(); // never leave jobs running behind a failed walk
    throw err;
  }
  await plan.finish();
  const { digests, locations } = plan;

  const cache = new StatCacheBuilder();
  let files = 0;
  const manifestRoots: ManifestRoot[] = walked.map((w) => {
    if (w.kind === 'absent') return { name: w.root.name, kind: 'absent', entries: [] };
    const records: Record<string, StatRecord> = cache.root(w.root.name, w.root.absPath);
    const done = w.entries.map((e): ManifestEntry => {
      if (!isPending(e)) return e;
      const d = digests.get(e);
      if (d === undefined) throw new StoreError(`file ${e.absPath} was not stored`);
      files++;
      records[e.path] = cache.record(d.size, e.mtimeMs, e.ino, d.digest, locations.get(d.digest));
      return {
        path: e.path,
        type: 'file',
        mode: e.mode,
        size: d.size,
        mtimeMs: e.mtimeMs,
        digest: d.digest,
      };
    });
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

  return {
    roots: manifestRoots,
    newBlobs: plan.newBlobs,
    newBytes: plan.newBytes,
    stored: plan.stored,
    locations,
    stats: {
      files,
      reused: plan.reused,
      read: plan.read,
      bytesRead: plan.bytesRead,
      blobsWritten: plan.newBlobs,
      bytesWritten: plan.newBytes,
      groups: plan.groups,
      rawBlobs: plan.rawBlobs,
    },
    statCache: cache.build('', recordedAt),
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
