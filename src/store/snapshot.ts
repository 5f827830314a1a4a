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
import { lstatSync, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import type { BlobStore, Location } from './blobs.js';
import { putChunked } from './chunked.js';
import {
  resolveLink,
  unsafeChildReason,
  unsafeTargetReason,
  type ManifestEntry,
  type ManifestRoot,
} from './manifest.js';
import { STREAM_AT, type PoolDirs, type WorkerPool } from './pool.js';
import {
  CLOCK_LAG_MS,
  StatCacheBuilder,
  type DirLookup,
  type StatCacheFile,
  type StatLookup,
} from './statcache.js';
import { preclaimed } from './test-hooks.js';
import type { OutputRoot } from './types.js';

/** Files below this size are grouped with others of the same save (they compress far better). */
export const SMALL_FILE = 64 * 1024;
/** Content per group blob. */
export const GROUP_BYTES = 1024 * 1024;
/** Slots of a save's content-claim table (8 bytes each; a fuller table only dedups less). */
const CLAIM_SLOTS = 1 << 17;
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

/**
 * A save's claim table (see `claim` in worker-source.ts, which it must match): 64-bit slots,
 * open addressing on the first 64 bits of a digest; `taken` are claimed from the start.
 */
function newClaims(taken: readonly string[]): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(8 * CLAIM_SLOTS);
  const tab = new BigInt64Array(sab);
  for (const d of taken) {
    let key = BigInt.asIntN(64, BigInt(`0x${d.slice(0, 16)}`));
    if (key === 0n) key = 1n;
    let i = Number(BigInt.asUintN(32, key)) & (CLAIM_SLOTS - 1);
    while (tab[i] !== 0n && tab[i] !== key) i = (i + 1) & (CLAIM_SLOTS - 1);
    tab[i] = key;
  }
  return sab;
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
  /** Set once stored (or found unchanged): its digest and the size that digest is of. */
  digest?: string;
  contentSize?: number;
}

function perm(st: Stats): number {
  return st.mode & 0o777;
}

function isPending(e: ManifestEntry | PendingFile): e is PendingFile {
  return !('type' in e);
}

/**
 * Directory listing in the workers (worker-source.ts `listDirs`): for each directory, its
 * entry names in byte order and five numbers per entry from lstat (kind, permission bits,
 * size, mtimeMs, inode), plus each symlink's target; `missing` where the directory is gone.
 */
export interface DirListing {
  readonly dir: string;
  readonly names: string[];
  readonly stats: Float64Array;
  readonly targets: (string | null)[];
  readonly missing?: boolean;
}
export type ListDirs = (dirs: string[], budget: number) => Promise<DirListing[]>;
/** lstat kinds as the workers report them (0: gone). */
const KIND = { gone: 0, file: 1, dir: 2, symlink: 3, other: 4 } as const;
/** Entries per listing job: a worker lists its directories and goes on below them until this. */
const LIST_BUDGET = 1024;
/** Entries of the first listing jobs, which find the directories both workers then list. */
const FIRST_BUDGET = 64;
/** Directories per listing job, at most (fewer while few are known, so both workers list). */
const LIST_BATCH = 64;

interface DirNode {
  readonly abs: string;
  readonly rel: string;
  /** Its entries in byte order (children of a sub-directory follow that directory). */
  entries?: (ManifestEntry | PendingFile)[];
  /** The sub-directories among them, by name. */
  readonly subdirs: Map<string, DirNode>;
}

/**
 * Lists a directory root: every entry, parents before children, each directory's entries in
 * byte order. The listing and the lstat of every entry (most of a walk's cost) run in the
 * workers, directories in batches, ahead of any compression job; each regular file goes to
 * `onFile` as soon as its directory's listing comes back, so compression starts while the
 * rest of the tree is still being listed.
 */
async function walkDir(
  rootAbs: string,
  rootName: string,
  onFile: OnFile,
  list: ListDirs,
  cachedDir: (rel: string) => DirLookup | undefined,
): Promise<(ManifestEntry | PendingFile)[]> {
  const root: DirNode = { abs: rootAbs, rel: '', subdirs: new Map() };
  const queue: DirNode[] = [root];
  /** Directories found and not listed yet, by absolute path. */
  const unlisted = new Map<string, DirNode>([[rootAbs, root]]);
  /** Every listing job; a job's end sends the directories it found, so the list grows. */
  const jobs: Promise<void>[] = [];
  let failure: unknown;

  /**
   * The sub-directories of a listing, queued for listing unless `listed` already has them.
   * Runs for every listing of a job before the files are looked at, so the workers get their
   * next directories without waiting for that.
   */
  const found = (node: DirNode, l: DirListing, listed: ReadonlySet<string>): void => {
    unlisted.delete(node.abs);
    if (l.missing === true) return; // gone since its parent was listed
    for (let k = 0; k < l.names.length; k++) {
      if (l.stats[k * 5] !== KIND.dir) continue;
      const name = l.names[k] as string;
      if (unsafeChildReason(node.rel, name) !== undefined) continue; // take() warns
      const abs = `${node.abs}${path.sep}${name}`;
      const child: DirNode = {
        abs,
        rel: node.rel === '' ? name : `${node.rel}/${name}`,
        subdirs: new Map(),
      };
      node.subdirs.set(name, child);
      unlisted.set(abs, child);
      if (!listed.has(abs)) queue.push(child);
    }
  };

  /** The entries of a listing, in byte order; each regular file goes to `onFile`. */
  const take = (node: DirNode, l: DirListing): void => {
    const entries: (ManifestEntry | PendingFile)[] = [];
    node.entries = entries;
    if (l.missing === true) return;
    const cached = cachedDir(node.rel);
    for (let k = 0; k < l.names.length; k++) {
      const name = l.names[k] as string;
      const o = k * 5;
      const kind = l.stats[o] as number;
      if (kind === KIND.gone) continue; // vanished meanwhile
      const mode = l.stats[o + 1] as number;
      const mtimeMs = l.stats[o + 3] as number;
      if (kind === KIND.dir) {
        const child = node.subdirs.get(name);
        if (child !== undefined) {
          entries.push({ path: child.rel, type: 'dir', mode, size: 0, mtimeMs });
          continue;
        }
      }
      const p = node.rel === '' ? name : `${node.rel}/${name}`;
      const why = unsafeChildReason(node.rel, name);
      if (why !== undefined) {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: ${why}`);
        continue;
      }
      if (kind === KIND.file) {
        const size = l.stats[o + 2] as number;
        const ino = l.stats[o + 4] as number;
        const abs = `${node.abs}${path.sep}${name}`;
        const file: PendingFile = { absPath: abs, path: p, mode, mtimeMs, size, ino };
        entries.push(file);
        onFile(file, cached?.digestOf(name, size, mtimeMs, ino));
      } else if (kind === KIND.symlink) {
        const target = l.targets[k];
        if (typeof target !== 'string') continue; // replaced meanwhile
        entries.push({ path: p, type: 'symlink', mode, size: 0, mtimeMs, target });
      } else {
        core.warning(`clyde-cache: not caching ${rootName}/${p}: not a file, directory or symlink`);
      }
    }
  };

  // Sends what is queued in batches: half of it per job while little is known (both workers
  // list), at most LIST_BATCH directories per job.
  const pump = (): void => {
    while (queue.length > 0 && failure === undefined) {
      const n = Math.min(LIST_BATCH, Math.max(1, Math.ceil(queue.length / 2)));
      const batch = queue.splice(0, n);
      // (The first jobs come back quickly with directories to share out: the second worker
      // starts listing sooner.)
      const job = list(
        batch.map((d) => d.abs),
        jobs.length < 2 ? FIRST_BUDGET : LIST_BUDGET,
      ).then(
        (ls) => {
          // A listing follows its parent's: each directory is known by the time it comes.
          const listed = new Set(ls.map((l) => l.dir));
          const nodes = ls.map((l) => {
            const node = unlisted.get(l.dir);
            if (node === undefined) throw new StoreError(`unexpected listing of ${l.dir}`);
            found(node, l, listed);
            return node;
          });
          pump();
          ls.forEach((l, k) => take(nodes[k] as DirNode, l));
        },
        (err: unknown) => {
          failure ??= err;
        },
      );
      jobs.push(job.finally(pump));
    }
  };
  pump();
  // (A job pushes the jobs it starts before it settles, so this reaches every one.)
  for (let i = 0; i < jobs.length; i++) await jobs[i];
  if (failure !== undefined) throw failure;

  // Parents before children, each directory's entries in byte order.
  const out: (ManifestEntry | PendingFile)[] = [];
  const flatten = (node: DirNode): void => {
    for (const e of node.entries ?? []) {
      out.push(e);
      if (!isPending(e) && e.type === 'dir') {
        const child = node.subdirs.get(e.path.slice(e.path.lastIndexOf('/') + 1));
        if (child !== undefined) flatten(child);
      }
    }
  };
  flatten(root);
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
  /** Another file of this save claimed the content first (see `claim` in the workers). */
  readonly dup?: boolean;
}

interface GroupResult {
  readonly group: string | null;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly members: { digest: string; size: number; offset: number; dup?: boolean }[];
}

/** One root as walked: its manifest shell and the files still to be stored. */
interface WalkedRoot {
  readonly root: OutputRoot;
  readonly kind: 'dir' | 'file' | 'absent';
  readonly mode?: number;
  readonly mtimeMs?: number;
  readonly entries: (ManifestEntry | PendingFile)[];
}

/** A file found by the walk, with its digest when the stat cache vouches for it. */
type OnFile = (f: PendingFile, cached: string | undefined) => void;

async function walkRoot(
  root: OutputRoot,
  onFile: OnFile,
  list: ListDirs,
  stat: StatLookup | undefined,
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
    onFile(file, stat?.digestOf(root, '', file.size, file.mtimeMs, file.ino));
    return { root, kind: 'file', mode: file.mode, mtimeMs: file.mtimeMs, entries: [file] };
  }
  if (!st.isDirectory()) {
    core.warning(
      `clyde-cache: not caching ${root.name}: it is a symlink or special file, not a directory or file`,
    );
    return { root, kind: 'absent', entries: [] };
  }
  const cachedDir = (rel: string): DirLookup | undefined => stat?.dir(root, rel);
  const entries = dropUnsafeLinks(
    root.name,
    await walkDir(root.absPath, root.name, onFile, list, cachedDir),
  );
  return { root, kind: 'dir', mode: perm(st), mtimeMs: st.mtimeMs, entries };
}

/**
 * Decides, file by file as the walk finds them, what each needs (nothing when the stat cache
 * vouches for it; a place in a group; a blob of its own), and sends the work to the pool.
 */
class Planner {
  readonly stored = new Map<string, number>();
  readonly locations = new Map<string, Location>();
  newBlobs = 0;
  newBytes = 0;
  reused = 0;
  read = 0;
  bytesRead = 0;
  groups = 0;
  rawBlobs = 0;
  private readonly counted = new Set<string>();
  private readonly groupSeen = new Map<string, number | undefined>();
  /** Grouped content already in the store, one digest per line (one string: cheap to post). */
  private readonly known: string;
  /**
   * Content claims of this save, shared by the workers (one 64-bit slot each): a file whose
   * content another file of the save claimed is neither compressed nor written again.
   */
  private readonly claims = newClaims(preclaimed());
  /** Files whose content another file of this save holds, paired up in finish(). */
  private readonly dups: PendingFile[] = [];
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
    const known: string[] = [];
    for (const [d, loc] of basis?.locations ?? []) {
      if (this.groupSize(loc.group) !== undefined) known.push(d);
    }
    this.known = known.join('\n');
  }

  /** Stored size of a group blob (undefined when it is gone), one stat per group. */
  private groupSize(group: string): number | undefined {
    if (!this.groupSeen.has(group)) this.groupSeen.set(group, ownSizeSync(this.blobs, group));
    return this.groupSeen.get(group);
  }

  /** `cached`: its digest when the stat cache vouches for it. */
  add(e: PendingFile, cached: string | undefined): void {
    if (cached !== undefined && this.reuse(e, cached)) return;
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
    // Each duplicate shares its claimer's blob; one whose claimer differs beyond the first 64
    // bits of digest (never seen, but possible) is stored after all, unclaimed.
    const unmatched = this.dups.filter((f) => !this.pairDup(f));
    if (unmatched.length > 0) {
      this.running.length = 0;
      this.runFiles(unmatched, 0, false);
      await Promise.all(this.running);
    }
  }

  /** Points a duplicate at the blob its claimer stored; false when there is none. */
  private pairDup(f: PendingFile): boolean {
    const d = f.digest as string;
    return this.locations.has(d) || this.stored.has(d);
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
      this.stored.set(loc.group, size);
    } else {
      const size = ownSizeSync(this.blobs, d);
      if (size === undefined) return false;
      this.stored.set(d, size);
    }
    e.digest = d;
    e.contentSize = e.size;
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
        claims: this.claims,
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
      f.digest = m.digest;
      f.contentSize = m.size;
      if (m.dup === true) {
        this.dups.push(f);
        return;
      }
      const loc =
        m.offset >= 0 && r.group !== null
          ? { group: r.group, groupSize: r.size, offset: m.offset, size: m.size }
          : this.basis?.locations.get(m.digest);
      if (loc === undefined) throw new StoreError(`no location for ${f.absPath}`);
      if (!this.locations.has(m.digest)) this.locations.set(m.digest, loc);
      if (m.offset < 0) this.stored.set(loc.group, this.groupSeen.get(loc.group) ?? 0);
    });
  }

  /** A large file: read and hashed here, its chunks compressed on every worker (chunked.ts). */
  private runChunked(f: PendingFile): void {
    const job = async (): Promise<void> => {
      const r = await putChunked(this.pool, this.dirs, f.absPath, f.size);
      this.read++;
      this.bytesRead += r.size;
      f.digest = r.digest;
      f.contentSize = r.size;
      this.note(r.digest, r.stored, r.written);
      if (r.written && r.raw) this.rawBlobs++;
    };
    this.track(job());
  }

  /** Directory listings in the workers, ahead of every queued compression job. */
  readonly list: ListDirs = (dirs, budget) =>
    this.pool.run<DirListing[]>(
      'listDirs',
      { dirs: this.dirs, paths: dirs, budget },
      Number.MAX_SAFE_INTEGER,
    );

  /** Standalone blobs for `batch` (claiming content for this save unless `claim` is false). */
  private runFiles(batch: PendingFile[], bytes: number, claim = true): void {
    const job = async (): Promise<void> => {
      const rs = await this.pool.run<PutResult[]>(
        'putFiles',
        {
          dirs: this.dirs,
          files: batch.map((f) => ({ abs: f.absPath, size: f.size })),
          ...(claim ? { claims: this.claims } : {}),
        },
        bytes,
      );
      rs.forEach((r, k) => {
        const f = batch[k] as PendingFile;
        f.digest = r.digest;
        f.contentSize = r.size;
        if (claim) {
          // (The unclaimed run stores duplicates already counted.)
          this.read++;
          this.bytesRead += r.size;
        }
        if (r.dup === true) {
          this.dups.push(f);
          return;
        }
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
      walked.push(await walkRoot(root, (f, d) => plan.add(f, d), plan.list, basis?.stat));
    }
  } catch (err) {
    await plan.settle(); // never leave jobs running behind a failed walk
    throw err;
  }
  await plan.finish();
  const { locations } = plan;

  const cache = new StatCacheBuilder();
  let files = 0;
  const manifestRoots: ManifestRoot[] = walked.map((w) => {
    if (w.kind === 'absent') return { name: w.root.name, kind: 'absent', entries: [] };
    const records = cache.root(w.root.name, w.root.absPath);
    const done = w.entries.map((e): ManifestEntry => {
      if (!isPending(e)) return e;
      const digest = e.digest;
      const size = e.contentSize;
      if (digest === undefined || size === undefined) {
        throw new StoreError(`file ${e.absPath} was not stored`);
      }
      files++;
      records.add(e.path, size, e.mtimeMs, e.ino, digest, locations.get(digest));
      return { path: e.path, type: 'file', mode: e.mode, size, mtimeMs: e.mtimeMs, digest };
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
