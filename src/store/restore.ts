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
} from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { rename } from '../util/fsx.js';
import type { BlobStore } from './blobs.js';
import { childPath, foldCollision, symlinkKinds } from './fold.js';
import type { ManifestEntry } from './manifest.js';
import { CLOCK_LAG_MS } from './statcache.js';
import { GroupList, type TableRoot } from './table.js';
import { manifestTable } from './table-manifest.js';
import type { RestoreOptions, RestoreResult } from './types.js';
import {
  checkRoom,
  declaredBytes,
  existingAncestor,
  leadsTo,
  lstatOrUndefined,
  preflight,
  refuseLinksLeaving,
  refuseRootsThroughLinks,
  type RootToRestore,
} from './restore-checks.js';
import {
  fileJob,
  materialize,
  mtimeFor,
  type FileJob,
  type FrameSource,
  type Written,
} from './restore-write.js';

const STAGING_PREFIX = '.clyde-restore-';

export type { RootToRestore } from './restore-checks.js';
export type { FrameSource } from './restore-write.js';

interface Staged {
  readonly job: RootToRestore;
  /** The directory holding the staged root (removed at the end). */
  readonly container: string;
  /** The staged root itself: `<container>/root`. */
  readonly item: string;
}

/** One file to materialise: its manifest entry and the staged root it goes under. */

/** Below this many directories, one worker makes them all. */
const MKDIR_SPLIT = 64;

/**
 * A directory whose mode lets its owner in (rwx) gets that mode as it is made, in staging;
 * any other waits until its content is in (`finishDirs`).
 */
function modeAtOnce(mode: number): boolean {
  return (mode & 0o700) === 0o700;
}

/** Whether `opts` sets mtimes at all (saved ones or one given time). */
function setsMtimes(opts: RestoreOptions): boolean {
  return opts.mtimeMs !== undefined || opts.mtimes === true;
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
  await inHalves(paths.length, paths.length >= MKDIR_SPLIT, (a, b) =>
    blobs
      .pool()
      .run(
        'mkdirBatch',
        { dirs: blobs.dirs, paths: paths.slice(a, b), modes: modes.slice(a, b) },
        Number.MAX_SAFE_INTEGER,
      ),
  );
}

/** Runs `part` over [0, count) in the workers: whole, or (`split`) as two halves at once. */
async function inHalves(
  count: number,
  split: boolean,
  part: (from: number, to: number) => Promise<unknown>,
): Promise<void> {
  if (count === 0) return;
  const half = split ? Math.ceil(count / 2) : count;
  const settled = await Promise.allSettled([
    part(0, half),
    ...(half < count ? [part(half, count)] : []),
  ]);
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
  blobs: BlobStore,
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
  const paths = dirs.map((e) => path.join(job.root.absPath, ...e.path.split('/')));
  const modes = dirs.map((e) => e.mode);
  const mtimes = dirs.map((e) => mtimeFor(e, opts) ?? NaN);
  if (wholeRoot && m.mode !== undefined && m.mtimeMs !== undefined) {
    paths.push(job.root.absPath);
    modes.push(m.mode);
    mtimes.push(mtimeFor(m, opts) ?? NaN);
  }
  // In the workers, as sync calls (one async call per directory and attribute was most of a
  // restore's tail). Two halves at once only when no mode shuts its owner out: then no
  // directory of one half can stop the other half from reaching its own.
  const split = paths.length >= MKDIR_SPLIT && modes.every(modeAtOnce);
  await inHalves(paths.length, split, (a, b) =>
    blobs.pool().run(
      'settleDirs',
      {
        dirs: blobs.dirs,
        paths: paths.slice(a, b),
        modes: modes.slice(a, b),
        mtimes: Float64Array.from(mtimes.slice(a, b)),
      },
      Number.MAX_SAFE_INTEGER,
    ),
  );
}

async function moveIntoPlace(blobs: BlobStore, s: Staged, opts: RestoreOptions): Promise<void> {
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
    await finishDirs(blobs, s.job, true, opts);
  } else if (st.isDirectory()) {
    const merged = new Set<string>();
    await mergeInto(s.item, dest, '', merged);
    await finishDirs(blobs, s.job, false, opts, merged);
  } else {
    await fs.rm(dest, { force: true });
    await rename(s.item, dest);
    await finishDirs(blobs, s.job, true, opts);
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
  await checkRoom(live);
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
    for (const s of staged) await moveIntoPlace(blobs, s, opts);
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
