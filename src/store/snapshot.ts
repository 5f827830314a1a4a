/**
 * The save side: walk each output root with lstat (never following a symlink), hash and store
 * the files' content as blobs (in worker threads, pool.ts), and describe everything in a
 * manifest. What restore would refuse (unsafe paths, symlinks that leave their root, special
 * files) is skipped here with a warning, so the manifest built here passes `parseManifest`.
 *
 * The walk and the workers overlap: jobs go out while the walk goes on (small files in groups
 * of about 1 MiB as they fill, larger files in batches, files of STREAM_AT or more in chunks
 * that every worker compresses, chunked.ts), and the pool hands the largest queued job to the
 * next idle worker, so the two workers finish together.
 */
import * as core from '@actions/core';
import { lstatSync, readdirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { sortBytes } from '../util/bytes.js';
import { StoreError } from '../errors.js';
import type { BlobStore, Location } from './blobs.js';
import { putChunked } from './chunked.js';
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

/** lstat in the workers: paths in, five numbers per path out (see worker-source.ts). */
export type StatBatch = (paths: string[]) => Promise<Float64Array>;
/** Paths per lstat job. */
const STAT_BATCH = 1024;
/** lstat kinds as the workers report them (0: gone). */
const KIND = { gone: 0, file: 1, dir: 2, symlink: 3, other: 4 } as const;

interface Found {
  readonly abs: string;
  readonly path: string;
  /** What readdir said it is; 'dir' means its children are listed after it. */
  readonly dir: boolean;
}

/**
 * Lists a directory root: every entry in byte order, parents before children. Only readdir
 * runs here (it tells directories apart); the lstat of each entry, most of a walk's cost, is
 * done by the workers in batches (`stat`), and the entries are handed on batch by batch, each
 * regular file to `onFile` as its batch comes back, so jobs start while the rest is stat-ed.
 */
async function walkDir(
  rootAbs: string,
  rootName: string,
  onFile: (f: PendingFile) => void,
  stat: StatBatch,
): Promise<(ManifestEntry | PendingFile)[]> {
  const found: Found[] = [];
  const batches: Promise<Float64Array>[] = [];
  // Each full batch goes out at once: the workers stat it while the listing goes on.
  const send = (): void => {
    const from = batches.length * STAT_BATCH;
    const job = stat(found.slice(from, from + STAT_BATCH).map((f) => f.abs));
    job.catch(() => {}); // awaited in order below
    batches.push(job);
  };
  const visit = (dirAbs: string, rel: string): void => {
    const dirents = readdirSync(dirAbs, { withFileTypes: true });
    const isDir = new Map<string, boolean>();
    for (const d of dirents) {
      // (DT_UNKNOWN on some filesystems: ask lstat)
      const known = d.isDirectory() || d.isFile() || d.isSymbolicLink();
      const special = d.isBlockDevice() || d.isCharacterDevice() || d.isFIFO() || d.isSocket();
      const dir = known || special ? d.isDirectory() : isDirectory(path.join(dirAbs, d.name));
      isDir.set(d.name, dir);
    }
    for (const name of sortBytes([...isDir.keys()])) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const why = unsafePathReason(p);
      if (why !== undefined) {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: ${why}`);
        continue;
      }
      const abs = path.join(dirAbs, name);
      const dir = isDir.get(name) === true;
      found.push({ abs, path: p, dir });
      if (found.length % STAT_BATCH === 0) send();
      if (dir) visit(abs, p);
    }
  };
  visit(rootAbs, '');

  if (found.length > batches.length * STAT_BATCH) send();
  const out: (ManifestEntry | PendingFile)[] = [];
  try {
    for (let b = 0; b < batches.length; b++) {
      const st = await (batches[b] as Promise<Float64Array>);
      const base = b * STAT_BATCH;
      const n = Math.min(STAT_BATCH, found.length - base);
      for (let k = 0; k < n; k++) {
        const f = found[base + k] as Found;
        const [kind, mode, size, mtimeMs, ino] = st.subarray(k * 5, k * 5 + 5) as unknown as [
          number,
          number,
          number,
          number,
          number,
        ];
        if (kind === KIND.gone) continue; // vanished meanwhile (its children, if any, too)
        if ((kind === KIND.dir) !== f.dir) {
          throw new StoreError(`${rootName}/${f.path} changed while it was being saved`);
        }
        if (kind === KIND.dir) {
          out.push({ path: f.path, type: 'dir', mode, size: 0, mtimeMs });
        } else if (kind === KIND.file) {
          const file: PendingFile = { absPath: f.abs, path: f.path, mode, mtimeMs, size, ino };
          out.push(file);
          onFile(file);
        } else if (kind === KIND.symlink) {
          const target = readlinkSync(f.abs);
          out.push({ path: f.path, type: 'symlink', mode, size: 0, mtimeMs, target });
        } else {
          core.warning(
            `clyde-cache: not caching ${rootName}/${f.path}: not a file, directory or symlink`,
          );
        }
      }
    }
  } finally {
    await Promise.allSettled(batches);
  }
  return out;
}

function isDirectory(abs: string): boolean {
  return lstatSync(abs, { throwIfNoEntry: false })?.isDirectory() === true;
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

async function walkRoot(
  root: OutputRoot,
  onFile: (f: PendingFile) => void,
  stat: StatBatch,
): Promise<WalkedRoot> {
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
  const entries = dropUnsafeLinks(root.name, await walkDir(root.absPath, root.name, onFile, stat));
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
      this.runChunked(e);
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

  /** A large file: read and hashed here, its chunks compressed on every worker (chunked.ts). */
  private runChunked(f: PendingFile): void {
    const job = async (): Promise<void> => {
      const r = await putChunked(this.pool, this.dirs, f.absPath, f.size);
      this.read++;
      this.bytesRead += r.size;
      this.digests.set(f, { digest: r.digest, size: r.size });
      this.note(r.digest, r.stored, r.written);
      if (r.written && r.raw) this.rawBlobs++;
    };
    this.track(job());
  }

  /** lstat of `paths` in the workers, ahead of every queued compression job. */
  readonly stat: StatBatch = (paths) =>
    this.pool.run<Float64Array>('lstatBatch', { dirs: this.dirs, paths }, Number.MAX_SAFE_INTEGER);

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
    for (const root of roots) {
      walked.push(await walkRoot(root, (f) => plan.add(root, f), plan.stat));
    }
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
