/**
 * The restore side. Every requested root is first materialised in a staging directory next to
 * it (same filesystem), from blobs that are verified one by one; only when all roots are staged
 * is anything moved into the workspace. The manifest has already been validated
 * (`parseManifest`), and the move never follows a symlink that sits in the workspace.
 *
 * Symlinks that leave their root (anchored: manifest.ts `LinkAnchor`) are judged here, where the
 * workspace is known: one is made only when it leads inside the workspace it is restored in, or
 * the caller keeps outside links (`keep-outside-links`); otherwise the entry is refused before
 * anything is staged. Such a link is a leaf: nothing of the entry, and no other root of the
 * restore, is written beneath it (`refuseRootsThroughLinks`), and no root is restored through a
 * symlink anywhere in its path below the workspace (`preflight`).
 */
import {
  existsSync,
  mkdirSync,
  promises as fs,
  statSync,
  symlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import * as path from 'node:path';
import { StoreError, UnsafeEntryError } from '../errors.js';
import { formatBytes } from '../util/bytes.js';
import { isInside, relativeInside, rename } from '../util/fsx.js';
import { unpackedPath } from './blob-layout.js';
import type { BlobStore } from './blobs.js';
import { childPath, foldCollision, foldName, foldPath, symlinkKinds } from './fold.js';
import type { ManifestEntry, ManifestRoot } from './manifest.js';
import { STREAM_AT, UNPACKED_MTIME_MS, WorkerOpError } from './pool.js';
import type { FilesWire, LinkWire, WriteWire } from './worker-protocol.js';
import { CLOCK_LAG_MS } from './statcache.js';
import { GroupList, type TableRoot } from './table.js';
import { manifestTable } from './table-manifest.js';
import type { LinkOptions, OutputRoot, RestoreOptions, RestoreResult } from './types.js';

const STAGING_PREFIX = '.clyde-restore-';

export interface RootToRestore {
  readonly root: OutputRoot;
  readonly manifest: ManifestRoot;
}

interface Staged {
  readonly job: RootToRestore;
  /** The directory holding the staged root (removed at the end). */
  readonly container: string;
  /** The staged root itself: `<container>/root`. */
  readonly item: string;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The nearest existing directory at or above `dir`. */
async function existingAncestor(dir: string): Promise<string> {
  let cur = dir;
  for (;;) {
    try {
      if ((await fs.stat(cur)).isDirectory()) return cur;
    } catch {
      // keep climbing
    }
    const up = path.dirname(cur);
    if (up === cur) throw new StoreError(`no existing directory above ${dir}`);
    cur = up;
  }
}

/** The bytes of the files a root's manifest declares. */
function declaredBytes(m: ManifestRoot): number {
  const list = m.kind === 'file' && m.file ? [m.file] : m.entries;
  let bytes = 0;
  for (const e of list) if (e.type === 'file') bytes += e.size;
  return bytes;
}

/**
 * Refuses an entry whose files (as its manifest declares them, written as copies) cannot fit
 * in the free space where they are staged, before anything is written.
 */
async function checkRoom(jobs: readonly RootToRestore[]): Promise<void> {
  const need = new Map<string, { bytes: number; free: number }>();
  for (const j of jobs) {
    const dir = await existingAncestor(path.dirname(j.root.absPath));
    const st = await fs.statfs(dir).catch(() => undefined);
    if (st === undefined) continue;
    // Keyed by filesystem (its size and type stand in for a device number statfs lacks).
    const fsKey = `${st.type}:${st.blocks}:${st.bsize}`;
    const n = need.get(fsKey) ?? { bytes: 0, free: st.bavail * st.bsize };
    n.bytes += declaredBytes(j.manifest);
    need.set(fsKey, n);
    if (n.bytes > n.free) {
      throw new StoreError(
        `the entry's files take ${formatBytes(n.bytes)}, more than the ${formatBytes(n.free)} free where ${j.root.absPath} is restored`,
      );
    }
  }
}

/**
 * The first symlink among the directories between `workspace` and `abs` (both excluded), as far
 * as they exist; undefined when there is none or `abs` is not inside the workspace (what lies
 * above a path outside it is the machine's, not the workspace's).
 */
async function linkedParent(
  abs: string,
  workspace: string | undefined,
): Promise<string | undefined> {
  const rel = workspace === undefined ? undefined : relativeInside(workspace, path.dirname(abs));
  if (workspace === undefined || rel === undefined || rel === '') return undefined;
  let cur = workspace;
  for (const seg of rel.split(path.sep)) {
    cur = path.join(cur, seg);
    const st = await lstatOrUndefined(cur);
    if (st === undefined) return undefined;
    if (st.isSymbolicLink()) return cur;
  }
  return undefined;
}

/** Refuses what cannot be restored before anything is staged (and again before moving). */
async function preflight(job: RootToRestore, workspace: string | undefined): Promise<void> {
  const st = await lstatOrUndefined(job.root.absPath);
  if (st?.isSymbolicLink()) {
    throw new UnsafeEntryError(
      `output ${job.root.name} is a symlink in the workspace; not restoring through it`,
    );
  }
  const link = await linkedParent(job.root.absPath, workspace);
  if (link !== undefined) {
    throw new UnsafeEntryError(
      `output ${job.root.name} lies beneath ${link}, a symlink in the workspace; not restoring through it`,
    );
  }
  if (job.manifest.kind === 'file' && st?.isDirectory()) {
    throw new StoreError(
      `output ${job.root.name} is a directory in the workspace, the entry holds a file`,
    );
  }
}

/** One file to materialise: its manifest entry and the staged root it goes under. */
interface FileJob {
  readonly e: ManifestEntry;
  readonly digest: string;
  /** The staged root (`Staged.item`); the file goes to its `e.path` ('' for a file root). */
  readonly item: string;
}

/** What a written file looks like: [inode, mtimeMs] (renames into place keep both). */
type Written = readonly [number, number];

/** A file for a worker to make: its content, and where and how it goes. */
interface Placed {
  /** The directory it goes under (a staged root, or tmp/)... */
  readonly item: string;
  /** ...and its path there ('' for a file root). */
  readonly rel: string;
  readonly digest: string;
  readonly size: number;
  readonly mode: number;
  /** The mtime to give it; null leaves the write's. */
  readonly mtimeMs: number | null;
}

function filesWire(files: readonly Placed[]): FilesWire {
  const bases: string[] = [];
  const baseIndex = new Map<string, number>();
  const n = files.length;
  const base = new Uint32Array(n);
  const sizes = new Float64Array(n);
  const modes = new Uint16Array(n);
  const mtimes = new Float64Array(n);
  const rels: string[] = [];
  const digests: string[] = [];
  files.forEach((f, i) => {
    let b = baseIndex.get(f.item);
    if (b === undefined) {
      b = bases.push(f.item) - 1;
      baseIndex.set(f.item, b);
    }
    base[i] = b;
    rels.push(f.rel);
    digests.push(f.digest);
    sizes[i] = f.size;
    modes[i] = f.mode;
    mtimes[i] = f.mtimeMs ?? NaN;
  });
  return { bases, base, rels: rels.join('\0'), digests: digests.join(''), sizes, modes, mtimes };
}

interface WriteMember extends Placed {
  /** Index into the caller's list, for the answer. */
  readonly id: number;
  /** Renamed there once written and settled (unpacked copies), or null. */
  readonly renameTo: string | null;
}

interface WriteJob {
  blob: string;
  blobSize: number;
  stream: boolean;
  members: WriteMember[];
  /** Where each member sits in the blob's content. */
  offsets: number[];
}

/**
 * Where a restore reads its blobs when not from the store: a downloaded pack, each blob's frame
 * at a place the pack's own index gave (pack.ts `scanPack`). The workers verify every file's
 * content against its digest as they write it, as they do for store blobs.
 */
export interface FrameSource {
  readonly frames: ReadonlyMap<
    string,
    { readonly file: string; readonly offset: number; readonly length: number }
  >;
}

function writeWire(jobs: readonly WriteJob[], source?: FrameSource): WriteWire {
  const members = jobs.flatMap((j) => j.members);
  const starts = new Uint32Array(jobs.length + 1);
  const offsets = new Float64Array(members.length);
  let at = 0;
  jobs.forEach((j, k) => {
    starts[k] = at;
    for (const o of j.offsets) offsets[at++] = o;
  });
  starts[jobs.length] = at;
  return {
    ...filesWire(members),
    blobs: jobs.map((j) => j.blob).join(''),
    blobSizes: Float64Array.from(jobs, (j) => j.blobSize),
    streams: Uint8Array.from(jobs, (j) => (j.stream ? 1 : 0)),
    starts,
    ids: Uint32Array.from(members, (m) => m.id),
    offsets,
    renames: members.map((m) => m.renameTo ?? '').join('\0'),
    ...(source ? { pack: framesOf(jobs, source) } : {}),
  };
}

function framesOf(
  jobs: readonly WriteJob[],
  source: FrameSource,
): { files: string[]; frames: Float64Array } {
  const files: string[] = [];
  const out = new Float64Array(jobs.length * 3);
  jobs.forEach((j, k) => {
    const f = source.frames.get(j.blob);
    if (f === undefined) throw new StoreError(`the pack lacks blob ${j.blob}`);
    let i = files.indexOf(f.file);
    if (i < 0) i = files.push(f.file) - 1;
    out[3 * k] = i;
    out[3 * k + 1] = f.offset;
    out[3 * k + 2] = f.length;
  });
  return { files, frames: out };
}
/** Content per message to a worker. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** Files per link or clone message to a worker. */
const LINK_BATCH = 1024;

/**
 * Writes files from their blobs in the worker pool: one job per group blob (decompressed once,
 * every member verified) and batches of standalone blobs; large blobs stream. Returns what
 * each file looks like, by member id.
 */
async function writeFromBlobs(
  blobs: BlobStore,
  files: readonly WriteMember[],
  source?: FrameSource,
): Promise<Map<number, Written>> {
  const byBlob = new Map<string, WriteJob>();
  for (const m of files) {
    // Grouped content is found through the entry's table (read by the caller), in memory.
    const loc = blobs.located(m.digest);
    const blob = loc?.group ?? m.digest;
    let job = byBlob.get(blob);
    if (job === undefined) {
      job = {
        blob,
        blobSize: loc?.groupSize ?? m.size,
        stream: loc === undefined && m.size >= STREAM_AT,
        members: [],
        offsets: [],
      };
      byBlob.set(blob, job);
    }
    job.members.push(m);
    job.offsets.push(loc?.offset ?? 0);
  }
  // A streamed blob is decoded once per member; members beyond the first are separate jobs.
  const jobs: WriteJob[] = [];
  for (const j of byBlob.values()) {
    if (j.stream) for (const m of j.members) jobs.push({ ...j, members: [m], offsets: [0] });
    else jobs.push(j);
  }
  jobs.sort((a, b) => b.blobSize - a.blobSize);
  const batches: { jobs: WriteJob[]; bytes: number }[] = [];
  let cur: WriteJob[] = [];
  let bytes = 0;
  for (const j of jobs) {
    if (cur.length > 0 && bytes + j.blobSize > BATCH_BYTES) {
      batches.push({ jobs: cur, bytes });
      cur = [];
      bytes = 0;
    }
    cur.push(j);
    bytes += j.blobSize;
  }
  if (cur.length > 0) batches.push({ jobs: cur, bytes });
  const pool = blobs.pool();
  const dirs = blobs.dirs;
  const out = new Map<number, Written>();
  try {
    await Promise.all(
      batches.map(async (b) => {
        const wire = writeWire(b.jobs, source);
        const done = await pool.run('writeBatch', { dirs, ...wire }, b.bytes);
        for (let i = 0; i + 2 < done.length; i += 3) {
          out.set(done[i] as number, [done[i + 1] as number, done[i + 2] as number]);
        }
      }),
    );
  } catch (err) {
    if (err instanceof WorkerOpError && err.kind === 'corrupt' && source === undefined) {
      // A blob that decodes wrongly can never become valid: drop it (its entries become misses).
      const bad = /blob ([0-9a-f]{64})/.exec(err.message)?.[1];
      if (bad !== undefined) await blobs.remove(bad);
    }
    throw err instanceof StoreError ? err : new StoreError(String(err));
  }
  return out;
}

/** The mtime `opts` asks for a restored file or directory: null leaves the write's. */
function mtimeFor(e: ManifestEntry | ManifestRoot, opts: RestoreOptions): number | null {
  if (opts.mtimeMs !== undefined) return opts.mtimeMs;
  return opts.mtimes === true && e.mtimeMs !== undefined ? e.mtimeMs : null;
}

/** Whether `opts` sets mtimes at all (saved ones or one given time). */
function setsMtimes(opts: RestoreOptions): boolean {
  return opts.mtimeMs !== undefined || opts.mtimes === true;
}

/** A batch of files to link or clone from their unpacked copies. */
/**
 * Links or clones the files `which` (indexes into `files`) in the workers; per file
 * [inode, mtimeMs], or 0 where its unpacked copy was missing or unusable.
 */
async function linkInWorkers(
  blobs: BlobStore,
  files: readonly FileJob[],
  which: readonly number[],
  clone: boolean,
  opts: RestoreOptions,
): Promise<(Written | 0)[]> {
  const pool = blobs.pool();
  const dirs = blobs.dirs;
  const parts: Promise<Float64Array>[] = [];
  for (let i = 0; i < which.length; i += LINK_BATCH) {
    const wire: LinkWire = {
      ...filesWire(
        which.slice(i, i + LINK_BATCH).map((fi) => {
          const { e, digest, item } = files[fi] as FileJob;
          return {
            item,
            rel: e.path,
            digest,
            size: e.size,
            mode: e.mode,
            mtimeMs: mtimeFor(e, opts),
          };
        }),
      ),
      unpackedDir: blobs.unpackedDir,
      clone,
    };
    parts.push(pool.run('linkBatch', { dirs, ...wire }));
  }
  let done: Float64Array[];
  try {
    done = await Promise.all(parts);
  } catch (err) {
    throw err instanceof StoreError ? err : new StoreError(String(err));
  }
  const out: (Written | 0)[] = [];
  for (const d of done) {
    for (let k = 0; k < d.length; k += 2) {
      out.push((d[k] as number) < 0 ? 0 : [d[k] as number, d[k + 1] as number]);
    }
  }
  return out;
}

/**
 * Link or clone every file from the unpacked area. An unpacked copy is used only while it is
 * exactly as we left it: a read-only regular file of the right size and our sentinel mtime
 * (checked on the linked inode itself). Anything else (a build that chmod-ed and rewrote a
 * hard-linked file) is dropped and unpacked again from its verified blob, as are missing ones.
 */
async function materializeLinked(
  blobs: BlobStore,
  files: readonly FileJob[],
  mode: 'hardlink' | 'clone',
  opts: RestoreOptions,
): Promise<Written[]> {
  const clone = mode === 'clone';
  const got = await linkInWorkers(blobs, files, [...files.keys()], clone, opts);
  const retry: number[] = [];
  for (let i = 0; i < got.length; i++) if (got[i] === 0) retry.push(i);
  if (retry.length > 0) {
    const tmpDir = blobs.dirs.tmpDir;
    const need = new Map<string, WriteMember>();
    for (const i of retry) {
      const { e, digest } = files[i] as FileJob;
      // The unpacked copy's mode: the file's, read-only (the worker names it the same way).
      const umode = e.mode & ~0o222;
      const src = unpackedPath(blobs.unpackedDir, digest, umode);
      if (need.has(src)) continue;
      need.set(src, {
        id: i,
        digest,
        size: e.size,
        item: tmpDir,
        rel: `unpack-${process.pid}-${i}-${digest.slice(0, 16)}`,
        mode: umode,
        mtimeMs: UNPACKED_MTIME_MS,
        renameTo: src,
      });
    }
    await writeFromBlobs(blobs, [...need.values()]);
    const again = await linkInWorkers(blobs, files, retry, clone, opts);
    retry.forEach((i, k) => {
      got[i] = again[k] as Written | 0;
    });
  }
  return got.map((w, i) => {
    if (w === 0) {
      throw new StoreError(`the unpacked copy of ${files[i]?.digest} changed while restoring`);
    }
    return w;
  });
}

/** Writes the files of all staged roots, the way `opts.mode` asks; what each looks like. */
async function materialize(
  blobs: BlobStore,
  files: readonly FileJob[],
  opts: RestoreOptions,
  source?: FrameSource,
): Promise<Written[]> {
  // (A pack holds frames only: its files are always written, never linked.)
  let mode = source ? 'copy' : (opts.mode ?? 'copy');
  // Hard links share one inode, so one mtime: with mtimes requested, clone instead.
  if (mode === 'hardlink' && setsMtimes(opts)) mode = 'clone';
  if (mode !== 'copy') return materializeLinked(blobs, files, mode, opts);
  const written = await writeFromBlobs(
    blobs,
    files.map(({ e, digest, item }, id) => ({
      id,
      digest,
      size: e.size,
      item,
      rel: e.path,
      mode: e.mode,
      mtimeMs: mtimeFor(e, opts),
      renameTo: null,
    })),
    source,
  );
  return files.map((f, i) => {
    const w = written.get(i);
    if (w === undefined) throw new StoreError(`file ${f.e.path} was not written`);
    return w;
  });
}

function fileJob(e: ManifestEntry, item: string): FileJob {
  if (e.digest === undefined) throw new StoreError(`file ${e.path} has no digest`);
  return { e, digest: e.digest, item };
}

/** Below this many directories, one worker makes them all. */
const MKDIR_SPLIT = 64;

/**
 * A directory whose mode lets its owner in (rwx) gets that mode as it is made, in staging;
 * any other waits until its content is in (`finishDirs`).
 */
function modeAtOnce(mode: number): boolean {
  return (mode & 0o700) === 0o700;
}

/**
 * Makes a staged tree's directories in the workers, the list (parents before children) cut in
 * two halves made at once: a directory whose parent the other half has not made yet gets it
 * made first (the staging container is ours alone and holds no symlink yet, so nothing can
 * redirect that). Each gets its mode there and then (`modes[i]`, -1: stays 0700 for now).
 * Per-directory kernel time, not JavaScript, is what this spreads.
 */
async function makeDirs(
  blobs: BlobStore,
  paths: readonly string[],
  modes: readonly number[],
): Promise<void> {
  if (paths.length === 0) return;
  const half = Math.ceil(paths.length / 2);
  const parts =
    paths.length < MKDIR_SPLIT
      ? [{ paths, modes }]
      : [
          { paths: paths.slice(0, half), modes: modes.slice(0, half) },
          { paths: paths.slice(half), modes: modes.slice(half) },
        ];
  const pool = blobs.pool();
  const dirs = blobs.dirs;
  const settled = await Promise.allSettled(
    parts.map((p) => pool.run('mkdirBatch', { dirs, ...p }, Number.MAX_SAFE_INTEGER)),
  );
  for (const r of settled) {
    if (r.status === 'rejected') {
      throw r.reason instanceof StoreError ? r.reason : new StoreError(String(r.reason));
    }
  }
}

/**
 * Whether the filesystem of `dir` (a directory of ours) takes names that differ only in case,
 * or only in Unicode normalisation, for one name (APFS, HFS+, NTFS, ext4 with casefold): a name
 * is made there and looked up by a case-swapped and by a decomposed spelling.
 */
function foldsNames(dir: string): boolean {
  writeFileSync(path.join(dir, 'probe-\u00e9'), '', { flag: 'wx' });
  return existsSync(path.join(dir, 'PROBE-\u00c9')) || existsSync(path.join(dir, 'probe-e\u0301'));
}

/**
 * Refuses a directory root with two names that are one name where it is restored: on a
 * filesystem that folds names (`foldsNames`), `Foo.txt` and `foo.txt` cannot both exist, and
 * restoring one over the other would lose content without a word. Looked at only there.
 */
function refuseFoldedNames(job: RootToRestore, container: string): void {
  const m = job.manifest;
  if (m.kind !== 'dir' || m.entries.length < 2 || !foldsNames(container)) return;
  const hit = foldCollision(m.entries);
  if (hit === undefined) return;
  throw new StoreError(
    `output ${job.root.name}: ${JSON.stringify(hit[0].path)} and ${JSON.stringify(hit[1].path)} ` +
      `differ only in case or Unicode form, and the filesystem of ${job.root.absPath} takes them ` +
      'for one name; not restoring this entry there',
  );
}

async function stage(blobs: BlobStore, job: RootToRestore, files: FileJob[]): Promise<Staged> {
  const parent = await existingAncestor(path.dirname(job.root.absPath));
  const container = await fs.mkdtemp(path.join(parent, STAGING_PREFIX));
  const item = path.join(container, 'root');
  const staged: Staged = { job, container, item };
  const m = job.manifest;
  try {
    refuseFoldedNames(job, container);
    if (m.kind === 'file') {
      if (m.file === undefined) throw new StoreError(`root ${m.name} has no file`);
      files.push(fileJob(m.file, item));
      return staged;
    }
    mkdirSync(item, { mode: 0o700 });
    // Directories first, then content.
    const dirs: string[] = [];
    const modes: number[] = [];
    for (const e of m.entries) {
      if (e.type !== 'dir') continue;
      dirs.push(path.join(item, ...e.path.split('/')));
      modes.push(modeAtOnce(e.mode) ? e.mode : -1);
    }
    await makeDirs(blobs, dirs, modes);
    for (const e of m.entries) {
      if (e.type === 'file') files.push(fileJob(e, item));
    }
    return staged;
  } catch (err) {
    await fs.rm(container, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Makes the staged root's symlinks (after every file is written, so nothing is written through
 * one). Windows makes a link to a directory differently from one to a file, and cannot tell
 * which from a target that does not exist yet: there each gets the kind of what it resolves to
 * in the entry.
 */
function linkSymlinks(s: Staged, workspace: string | undefined): void {
  const win = process.platform === 'win32';
  const kinds = win ? symlinkKinds(s.job.manifest) : undefined;
  for (const e of s.job.manifest.entries) {
    if (e.type !== 'symlink' || e.target === undefined) continue;
    let text = e.target;
    let kind = kinds?.get(e);
    if (e.anchor !== undefined) {
      // Checked before staging (refuseLinksLeaving): it leads where this restore may go.
      const to = leadsTo(e, path.join(s.job.root.absPath, ...e.path.split('/')), workspace);
      if (to === undefined) throw new StoreError(`symlink ${e.path} has no workspace to lead into`);
      if (e.anchor === 'workspace') text = to;
      if (win) kind = statSync(to, { throwIfNoEntry: false })?.isDirectory() ? 'dir' : 'file';
    }
    symlinkSync(text, path.join(s.item, ...e.path.split('/')), kind);
  }
}

/**
 * Where an anchored symlink (manifest.ts `LinkAnchor`) made at `linkAbs` leads: an absolute
 * path, from its text alone (which is in normal form: `parseManifest`); undefined for one
 * written from the workspace when there is none.
 */
function leadsTo(
  e: ManifestEntry,
  linkAbs: string,
  workspace: string | undefined,
): string | undefined {
  const t = e.target ?? '';
  if (e.anchor === 'workspace') {
    return workspace === undefined ? undefined : path.join(workspace, ...t.slice(1).split('/'));
  }
  if (e.anchor === 'absolute') return t;
  return path.resolve(path.dirname(linkAbs), t);
}

/**
 * Refuses an entry with a symlink leaving its root that this restore may not make: one is made
 * when it leads inside `opts.workspace` (where it was saved does not matter: a link written
 * from the workspace is made for this one), or anywhere with `opts.keepOutsideLinks`. Entries
 * come from the remote tier: this is where their links are judged, before anything is staged.
 */
function refuseLinksLeaving(jobs: readonly RootToRestore[], opts: LinkOptions): void {
  for (const j of jobs) {
    for (const e of j.manifest.entries) {
      if (e.type !== 'symlink' || e.anchor === undefined) continue;
      const to = leadsTo(e, path.join(j.root.absPath, ...e.path.split('/')), opts.workspace);
      const where = `output ${j.root.name}: symlink ${JSON.stringify(e.path)}`;
      if (to === undefined) {
        throw new UnsafeEntryError(`${where} leads into the workspace, and this restore has none`);
      }
      if (opts.workspace !== undefined && isInside(opts.workspace, to)) continue;
      if (opts.keepOutsideLinks === true) continue;
      throw new UnsafeEntryError(
        `${where} points outside the workspace (to ${to}); not restoring this entry without ` +
          'keep-outside-links: true',
      );
    }
  }
}

/**
 * Refuses a root that lies beneath a symlink of another root of the same restore: moved into
 * place after it, its content would go wherever that link leads.
 */
function refuseRootsThroughLinks(jobs: readonly RootToRestore[]): void {
  for (const a of jobs) {
    const links = new Set<string>();
    for (const e of a.manifest.entries) if (e.type === 'symlink') links.add(foldPath(e.path));
    if (links.size === 0) continue;
    for (const b of jobs) {
      const rel = b === a ? undefined : relativeInside(a.root.absPath, b.root.absPath);
      if (rel === undefined || rel === '') continue;
      let p = '';
      for (const seg of rel.split(path.sep)) {
        p = childPath(p, foldName(seg));
        if (links.has(p)) {
          throw new UnsafeEntryError(
            `output ${b.root.name} lies beneath the symlink ${a.root.name}/${p} of the entry; ` +
              'not restoring through it',
          );
        }
      }
    }
  }
}

/**
 * Moves the staged children of `src` into the existing real directory `dest`. A staged
 * directory meeting a real directory is merged (its relative path, under `rel`, goes into
 * `merged`); anything else in the way (a file, a symlink, a directory where the entry has a
 * file) is replaced, never written through.
 */
async function mergeInto(
  src: string,
  dest: string,
  rel: string,
  merged: Set<string>,
): Promise<void> {
  for (const name of await fs.readdir(src)) {
    const s = path.join(src, name);
    const d = path.join(dest, name);
    const sst = await fs.lstat(s);
    const dst = await lstatOrUndefined(d);
    if (sst.isDirectory() && dst?.isDirectory()) {
      // Writable while we merge; finishDirs sets the entry's mode afterwards.
      await fs.chmod(d, (dst.mode & 0o777) | 0o700);
      const r = childPath(rel, name);
      merged.add(r);
      await mergeInto(s, d, r, merged);
      continue;
    }
    if (dst !== undefined && (dst.isDirectory() || sst.isDirectory())) {
      // rename() cannot replace a directory by a file or a file/symlink by a directory.
      await fs.rm(d, { recursive: true, force: true });
    }
    await rename(s, d);
  }
}

/**
 * What staging could not settle, set last, deepest first, so nothing blocks the writes: the
 * modes of directories that shut their owner out, of directories merged into existing ones
 * (`merged`) and of the root, and, when `opts` sets mtimes, every directory's mtime.
 */
async function finishDirs(
  job: RootToRestore,
  wholeRoot: boolean,
  opts: RestoreOptions,
  merged: ReadonlySet<string> = new Set(),
): Promise<void> {
  const m = job.manifest;
  const dirs = m.entries
    .filter(
      (e) => e.type === 'dir' && (setsMtimes(opts) || !modeAtOnce(e.mode) || merged.has(e.path)),
    )
    .reverse();
  const targets: { abs: string; mode: number; mtimeMs: number | null }[] = dirs.map((e) => ({
    abs: path.join(job.root.absPath, ...e.path.split('/')),
    mode: e.mode,
    mtimeMs: mtimeFor(e, opts),
  }));
  if (wholeRoot && m.mode !== undefined && m.mtimeMs !== undefined) {
    targets.push({ abs: job.root.absPath, mode: m.mode, mtimeMs: mtimeFor(m, opts) });
  }
  for (const t of targets) {
    const st = await lstatOrUndefined(t.abs);
    if (!st?.isDirectory()) continue; // never chmod through a symlink
    await fs.chmod(t.abs, t.mode);
    if (t.mtimeMs !== null) await fs.utimes(t.abs, new Date(t.mtimeMs), new Date(t.mtimeMs));
  }
}

async function moveIntoPlace(s: Staged, opts: RestoreOptions): Promise<void> {
  const dest = s.job.root.absPath;
  await preflight(s.job, opts.workspace);
  const st = await lstatOrUndefined(dest);
  if (s.job.manifest.kind === 'file') {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await rename(s.item, dest);
    return;
  }
  if (st === undefined) {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await rename(s.item, dest);
    await finishDirs(s.job, true, opts);
  } else if (st.isDirectory()) {
    const merged = new Set<string>();
    await mergeInto(s.item, dest, '', merged);
    await finishDirs(s.job, false, opts, merged);
  } else {
    await fs.rm(dest, { force: true });
    await rename(s.item, dest);
    await finishDirs(s.job, true, opts);
  }
}

/** The result, what the restored files look like now (for the next save's stat cache), and
 *  a promise that settles one clock tick after the last write (see `restoreRoots`). */
export interface RestoreRootsResult extends RestoreResult {
  /** The rows of what was restored, as it now is on disk (the stat cache of these paths). */
  readonly statCache: {
    readonly head: { recordedAt: number; groups: [string, number][] };
    readonly roots: TableRoot[];
  };
  readonly quiet: Promise<void>;
}

/**
 * Restores the roots. The caller must await `quiet` before the build may touch the files: past
 * one clock tick, whatever the build changes gets a later mtime than the stat cache's.
 * `located` settles once `blobs` knows where the entry's grouped files are (the caller's table
 * says so, usually before); nothing is written from a blob before.
 */
export async function restoreRoots(
  blobs: BlobStore,
  jobs: readonly RootToRestore[],
  opts: RestoreOptions = {},
  located: Promise<unknown> = Promise.resolve(),
  source?: FrameSource,
): Promise<RestoreRootsResult> {
  const live = jobs.filter((j) => j.manifest.kind !== 'absent');
  refuseLinksLeaving(live, opts);
  refuseRootsThroughLinks(live);
  for (const j of live) await preflight(j, opts.workspace);
  if ((opts.mode ?? 'copy') === 'copy') await checkRoom(live);
  const staged: Staged[] = [];
  const groups = new GroupList();
  let tableRoots: TableRoot[] = [];
  let recordedAt = 0;
  let quiet: Promise<void> = Promise.resolve();
  try {
    const files: FileJob[] = [];
    for (const j of live) staged.push(await stage(blobs, j, files));
    await located;
    const written = await materialize(blobs, files, opts, source);
    // The last file write is done (renames keep mtimes): the clock tick starts now. An mtime
    // is finer than a millisecond, so one written in this very millisecond is later than
    // Date.now(); a millisecond more covers it (nothing touches the files before `quiet`).
    recordedAt = Date.now() + 1;
    quiet = new Promise((r) => setTimeout(r, CLOCK_LAG_MS + 5));
    for (const s of staged) linkSymlinks(s, opts.workspace);
    for (const s of staged) await moveIntoPlace(s, opts);
    // Record the files as they now are: rename keeps inode and mtime.
    const now = new Map<ManifestEntry, Written>();
    files.forEach(({ e }, i) => now.set(e, written[i] as Written));
    const abs = new Map(live.map((j) => [j.manifest.name, path.resolve(j.root.absPath)]));
    tableRoots = manifestTable(
      live.map((j) => j.manifest),
      (d) => blobs.located(d),
      groups,
      (name) => abs.get(name),
      (e) => now.get(e),
    );
  } finally {
    for (const s of staged) await fs.rm(s.container, { recursive: true, force: true });
  }
  let files = 0;
  let bytes = 0;
  for (const j of live) {
    const list =
      j.manifest.kind === 'file' && j.manifest.file ? [j.manifest.file] : j.manifest.entries;
    for (const e of list) if (e.type === 'file') files++;
    bytes += declaredBytes(j.manifest);
  }
  return {
    files,
    bytes,
    statCache: { head: { recordedAt, groups: groups.list }, roots: tableRoots },
    quiet,
  };
}
