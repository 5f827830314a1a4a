/**
 * The restore side. Every requested root is first materialised in a staging directory next to
 * it (same filesystem), from blobs that are verified one by one; only when all roots are staged
 * is anything moved into the workspace. The manifest has already been validated
 * (`parseManifest`), and the move never follows a symlink that sits in the workspace.
 */
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { StoreError, UnsafeEntryError } from '../errors.js';
import type { BlobStore } from './blobs.js';
import type { ManifestEntry, ManifestRoot } from './manifest.js';
import { mapLimit } from './pool.js';
import type { OutputRoot, RestoreOptions, RestoreResult } from './types.js';

const FILES_IN_FLIGHT = 8;
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

/** Refuses what cannot be restored before anything is staged (and again before moving). */
async function preflight(job: RootToRestore): Promise<void> {
  const st = await lstatOrUndefined(job.root.absPath);
  if (st?.isSymbolicLink()) {
    throw new UnsafeEntryError(
      `output ${job.root.name} is a symlink in the workspace; not restoring through it`,
    );
  }
  if (job.manifest.kind === 'file' && st?.isDirectory()) {
    throw new StoreError(
      `output ${job.root.name} is a directory in the workspace, the entry holds a file`,
    );
  }
}

async function writeFile(
  blobs: BlobStore,
  dest: string,
  e: ManifestEntry,
  opts: RestoreOptions,
): Promise<void> {
  if (e.digest === undefined) throw new StoreError(`file ${e.path} has no digest`);
  const content = await blobs.read(e.digest, e.size);
  // 'wx': never write through anything already there (staging is ours and fresh anyway).
  await fs.writeFile(dest, content, { flag: 'wx', mode: 0o600 });
  await fs.chmod(dest, e.mode);
  if (opts.mtimes) await fs.utimes(dest, new Date(e.mtimeMs), new Date(e.mtimeMs));
}

async function stage(blobs: BlobStore, job: RootToRestore, opts: RestoreOptions): Promise<Staged> {
  const parent = await existingAncestor(path.dirname(job.root.absPath));
  const container = await fs.mkdtemp(path.join(parent, STAGING_PREFIX));
  const item = path.join(container, 'root');
  const staged: Staged = { job, container, item };
  try {
    const m = job.manifest;
    if (m.kind === 'file') {
      if (m.file === undefined) throw new StoreError(`root ${m.name} has no file`);
      await writeFile(blobs, item, m.file, opts);
      return staged;
    }
    await fs.mkdir(item, { mode: 0o700 });
    // Directories first (parents precede children in a valid manifest), then content.
    for (const e of m.entries) {
      if (e.type === 'dir') await fs.mkdir(path.join(item, ...e.path.split('/')), { mode: 0o700 });
    }
    const files = m.entries.filter((e) => e.type === 'file');
    await mapLimit(files, FILES_IN_FLIGHT, (e) =>
      writeFile(blobs, path.join(item, ...e.path.split('/')), e, opts),
    );
    for (const e of m.entries) {
      if (e.type === 'symlink' && e.target !== undefined) {
        await fs.symlink(e.target, path.join(item, ...e.path.split('/')));
      }
    }
    return staged;
  } catch (err) {
    await fs.rm(container, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Moves the staged children of `src` into the existing real directory `dest`. A staged
 * directory meeting a real directory is merged; anything else in the way (a file, a symlink,
 * a directory where the entry has a file) is replaced, never written through.
 */
async function mergeInto(src: string, dest: string): Promise<void> {
  for (const name of await fs.readdir(src)) {
    const s = path.join(src, name);
    const d = path.join(dest, name);
    const sst = await fs.lstat(s);
    const dst = await lstatOrUndefined(d);
    if (sst.isDirectory() && dst?.isDirectory()) {
      // Writable while we merge; finishDirs sets the entry's mode afterwards.
      await fs.chmod(d, (dst.mode & 0o777) | 0o700);
      await mergeInto(s, d);
      continue;
    }
    if (dst !== undefined && (dst.isDirectory() || sst.isDirectory())) {
      // rename() cannot replace a directory by a file or a file/symlink by a directory.
      await fs.rm(d, { recursive: true, force: true });
    }
    await fs.rename(s, d);
  }
}

/** Directory modes and mtimes are set last, deepest first, so nothing blocks the writes. */
async function finishDirs(
  job: RootToRestore,
  wholeRoot: boolean,
  opts: RestoreOptions,
): Promise<void> {
  const m = job.manifest;
  const dirs = m.entries.filter((e) => e.type === 'dir').reverse();
  const targets: { abs: string; mode: number; mtimeMs: number }[] = dirs.map((e) => ({
    abs: path.join(job.root.absPath, ...e.path.split('/')),
    mode: e.mode,
    mtimeMs: e.mtimeMs,
  }));
  if (wholeRoot && m.mode !== undefined && m.mtimeMs !== undefined) {
    targets.push({ abs: job.root.absPath, mode: m.mode, mtimeMs: m.mtimeMs });
  }
  for (const t of targets) {
    const st = await lstatOrUndefined(t.abs);
    if (!st?.isDirectory()) continue; // never chmod through a symlink
    await fs.chmod(t.abs, t.mode);
    if (opts.mtimes) await fs.utimes(t.abs, new Date(t.mtimeMs), new Date(t.mtimeMs));
  }
}

async function moveIntoPlace(s: Staged, opts: RestoreOptions): Promise<void> {
  const dest = s.job.root.absPath;
  await preflight(s.job);
  const st = await lstatOrUndefined(dest);
  if (s.job.manifest.kind === 'file') {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.rename(s.item, dest);
    return;
  }
  if (st === undefined) {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.rename(s.item, dest);
    await finishDirs(s.job, true, opts);
  } else if (st.isDirectory()) {
    await mergeInto(s.item, dest);
    await finishDirs(s.job, false, opts);
  } else {
    await fs.rm(dest, { force: true });
    await fs.rename(s.item, dest);
    await finishDirs(s.job, true, opts);
  }
}

export async function restoreRoots(
  blobs: BlobStore,
  jobs: readonly RootToRestore[],
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  const live = jobs.filter((j) => j.manifest.kind !== 'absent');
  for (const j of live) await preflight(j);
  const staged: Staged[] = [];
  try {
    for (const j of live) staged.push(await stage(blobs, j, opts));
    for (const s of staged) await moveIntoPlace(s, opts);
  } finally {
    for (const s of staged) await fs.rm(s.container, { recursive: true, force: true });
  }
  let files = 0;
  let bytes = 0;
  for (const j of live) {
    const list =
      j.manifest.kind === 'file' && j.manifest.file ? [j.manifest.file] : j.manifest.entries;
    for (const e of list) {
      if (e.type !== 'file') continue;
      files++;
      bytes += e.size;
    }
  }
  return { files, bytes };
}
