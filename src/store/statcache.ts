/**
 * The stat cache: what the files of an entry looked like on disk (size, mtime, inode) the last
 * time this machine saved or restored that entry, and their digests. The next save of the same
 * package reads, hashes and compresses only the files whose stat changed (issue 4, the
 * 1%-changed save). It also says where each grouped file lives (group blob, offset), so such a
 * save needs neither the previous manifest nor its table. It is a hint, never the truth: a
 * digest taken from it is used only when its content (its own blob, or its group) is still in
 * the store, a location it gives is verified whenever the content is read (restore and export
 * hash every grouped file), and a lost or damaged cache only makes the save read more.
 *
 *   <root>/statcache/<sha256(key)>/<sha256(root paths)>.bin   (removed with the entry)
 *
 * The file is a table (table.ts): rows per directory in listing order, so a save finds a
 * directory once and then matches each name at the row of its listing position (a lookup by
 * name only where the directory changed); numbers are float64 and digests 32 bytes, so writing
 * and reading it formats and parses no number. A save's stat cache is the very table it
 * stored as the entry's artifact (a hard link to it); a restore writes one for the paths it
 * restored to.
 *
 * `recordedAt` is chosen so that any change made after the stat was taken has a later mtime
 * (git's "racily clean" case): a save uses the start of its walk minus one clock tick; a restore
 * the end of its writes, and it waits one tick before returning. A file whose mtime is later
 * than `recordedAt` is not trusted.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../util/bytes.js';
import { rename, tempName, writeFileAtomic } from '../util/fsx.js';
import type { Location } from './blobs.js';
import { AT, NUMS, ROW, decodeTable, digestAt, locationAt, type Table } from './table.js';
import type { OutputRoot } from './types.js';

export const STATCACHE_DIR = 'statcache';
/** The most a file's mtime lags the clock (the kernel's coarse clock: one tick). */
export const CLOCK_LAG_MS = 20;

/** The stat caches of `key` (one per set of root paths it was saved from or restored to). */
function keyDir(storeRoot: string, key: string): string {
  return path.join(storeRoot, STATCACHE_DIR, sha256(key));
}

function fileName(storeRoot: string, key: string, roots: readonly OutputRoot[]): string {
  const id = sha256(JSON.stringify(roots.map((r) => [r.name, path.resolve(r.absPath)]).sort()));
  return path.join(keyDir(storeRoot, key), `${id}.bin`);
}

/** Deletes every stat cache of `key` (its entry is gone). */
export async function removeStatCaches(storeRoot: string, key: string): Promise<void> {
  // A restore of the entry in another process may write its stat cache here meanwhile (the
  // directory is then not empty when rm comes to it): tried again, that file goes too.
  await fs.rm(keyDir(storeRoot, key), {
    recursive: true,
    force: true,
    maxRetries: 5,
    retryDelay: 20,
  });
}

/** Stores `table` (encoded with `key`, `recordedAt` and each root's `abs`) as a stat cache. */
export async function writeStatCache(
  storeRoot: string,
  tmpDir: string,
  key: string,
  roots: readonly OutputRoot[],
  table: Buffer,
): Promise<void> {
  await writeFileAtomic(fileName(storeRoot, key, roots), table, tmpDir);
}

/**
 * Makes a committed artifact (a table encoded with `key`, `recordedAt` and each root's `abs`)
 * the stat cache of the roots it was saved from: a hard link (no second copy; neither file is
 * ever written in place), or a copy of `table` where the filesystem refuses links.
 */
export async function linkStatCache(
  storeRoot: string,
  tmpDir: string,
  key: string,
  roots: readonly OutputRoot[],
  artifact: string,
  table: Buffer,
): Promise<void> {
  const dest = fileName(storeRoot, key, roots);
  const tmp = tempName(tmpDir, 'statcache');
  try {
    await fs.link(artifact, tmp);
  } catch {
    await writeStatCache(storeRoot, tmpDir, key, roots, table);
    return;
  }
  try {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await rename(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** The rows of one directory of a stat cache: [first, first + count). */
export class DirCursor {
  private byName: Map<string, number> | undefined;

  constructor(
    readonly table: Table,
    private readonly first: number,
    private readonly count: number,
    private readonly recordedAt: number,
  ) {}

  /**
   * The row of file `name` (position k of its directory's listing) if its size, mtime and
   * inode are the recorded ones, else -1. An unchanged directory lists its names in the
   * recorded order, so the row at position k is checked first; a lookup by name is only needed
   * where the directory changed.
   */
  match(k: number, name: string, size: number, mtimeMs: number, ino: number): number {
    const names = this.table.names;
    let i = k;
    if (i >= this.count || names[this.first + i] !== name) {
      if (this.byName === undefined) {
        this.byName = new Map();
        for (let r = 0; r < this.count; r++) this.byName.set(names[this.first + r] as string, r);
      }
      const r = this.byName.get(name);
      if (r === undefined) return -1;
      i = r;
    }
    const f = this.first + i;
    const s = this.table.nums;
    const o = f * NUMS;
    if (s[o] !== ROW.file || s[o + AT.size] !== size || s[o + AT.ino] !== ino) return -1;
    if (s[o + AT.mtimeMs] !== mtimeMs || mtimeMs > this.recordedAt) return -1;
    return f;
  }
}

/** Lookup of unchanged files, directory by directory. */
export class StatLookup {
  private rootMemo:
    { root: OutputRoot; dirs: Map<string, [number, number]> | undefined } | undefined;
  private locs: Map<string, Location> | undefined;

  constructor(readonly table: Table | undefined) {}

  get usable(): boolean {
    return this.table !== undefined;
  }

  /** The rows of directory `dir` (relative, '' for the root) of `root`, if there are any. */
  dir(root: OutputRoot, dir: string): DirCursor | undefined {
    const t = this.table;
    if (t === undefined) return undefined;
    let memo = this.rootMemo;
    if (memo?.root !== root) {
      // (Once per root, not per directory.)
      const at = t.header.roots.findIndex((r) => r.name === root.name);
      const same = at >= 0 && t.header.roots[at]?.abs === path.resolve(root.absPath);
      memo = this.rootMemo = { root, dirs: same ? t.dirs[at] : undefined };
    }
    const range = memo.dirs?.get(dir);
    return range === undefined
      ? undefined
      : new DirCursor(t, range[0], range[1], t.header.recordedAt as number);
  }

  /** Where each grouped file of the cached entry lives (rows that do not add up are skipped). */
  locations(): Map<string, Location> {
    if (this.locs !== undefined) return this.locs;
    const out = new Map<string, Location>();
    const t = this.table;
    for (let i = 0; t !== undefined && i < t.rows; i++) {
      if (t.nums[i * NUMS] !== ROW.file) continue;
      const loc = locationAt(t, i);
      if (loc !== undefined) out.set(digestAt(t, i), loc);
    }
    this.locs = out;
    return out;
  }
}

/** The stat cache of `key` for `roots`; an unusable lookup when there is none or it is damaged. */
export async function readStatCache(
  storeRoot: string,
  key: string,
  roots: readonly OutputRoot[],
): Promise<StatLookup> {
  try {
    const t = decodeTable(await fs.readFile(fileName(storeRoot, key, roots)));
    if (t.header.key !== key || typeof t.header.recordedAt !== 'number') {
      return new StatLookup(undefined);
    }
    return new StatLookup(t);
  } catch {
    return new StatLookup(undefined);
  }
}
