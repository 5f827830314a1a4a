/**
 * The stat cache: what the files of an entry looked like on disk (size, mtime, inode) the last
 * time this machine saved or restored that entry, and their digests. The next save of the same
 * package reads, hashes and compresses only the files whose stat changed (issue 4, the
 * 1%-changed save). It also says where each grouped file lives (group blob, offset), so such a
 * save needs neither the previous manifest nor its locator. It is a hint, never the truth: a
 * digest taken from it is used only when its content (its own blob, or its group) is still in
 * the store, a location it gives is verified whenever the content is read (restore and export
 * hash every grouped file), and a lost or damaged cache only makes the save read more.
 *
 *   <root>/statcache/<sha256(key, root paths)>.json
 *
 * Records are kept per directory, names in listing order, so a save finds a directory's
 * records once and then matches names in step with its own listing (no lookup per file).
 *
 * `recordedAt` is chosen so that any change made after the stat was taken has a later mtime
 * (git's "racily clean" case): a save uses the start of its walk minus one clock tick; a restore
 * the end of its writes, and it waits one tick before returning. A file whose mtime is later
 * than `recordedAt` is not trusted.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../util/bytes.js';
import { writeFileAtomic } from '../util/fsx.js';
import type { Location } from './blobs.js';
import type { OutputRoot } from './types.js';

export const STATCACHE_DIR = 'statcache';
/** The most a file's mtime lags the clock (the kernel's coarse clock: one tick). */
export const CLOCK_LAG_MS = 20;
const DIGEST = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]*$/;
/** Numbers per file record: size, mtimeMs, inode, group index (-1: own blob), offset. */
const NUMS = 5;

/**
 * One directory's files: `n` their names (listing order), `d` their digests, `s` NUMS numbers
 * each. A file root is the directory '' with the one name ''.
 */
export interface DirRecords {
  readonly n: string[];
  readonly d: string[];
  readonly s: number[];
}

export interface StatCacheFile {
  readonly v: 3;
  readonly key: string;
  /** Epoch ms: changes after this moment show in a file's mtime. */
  readonly recordedAt: number;
  /** The group blobs the records point into: [digest, uncompressed size]. */
  readonly groups: [string, number][];
  /** root name -> { abs path, directory (relative, '' for the root) -> its files } */
  readonly roots: Record<string, { abs: string; dirs: Record<string, DirRecords> }>;
}

/** Where a relative path splits into directory and name. */
function splitRel(rel: string): [string, string] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}

/** The records of one root being built. */
export class RootRecords {
  private readonly dirs: Record<string, DirRecords> = Object.create(null) as Record<
    string,
    DirRecords
  >;
  private last: { dir: string; recs: DirRecords } | undefined;

  constructor(private readonly builder: StatCacheBuilder) {}

  get records(): Record<string, DirRecords> {
    return this.dirs;
  }

  /** The file at relative path `rel` ('' for a file root). */
  add(
    rel: string,
    size: number,
    mtimeMs: number,
    ino: number,
    digest: string,
    loc?: Location,
  ): void {
    const [dir, name] = splitRel(rel);
    let recs = this.last?.dir === dir ? this.last.recs : this.dirs[dir];
    if (recs === undefined) {
      recs = { n: [], d: [], s: [] };
      this.dirs[dir] = recs;
    }
    this.last = { dir, recs };
    recs.n.push(name);
    recs.d.push(digest);
    const gi = loc === undefined ? -1 : this.builder.groupOf(loc);
    recs.s.push(size, mtimeMs, ino, gi, loc === undefined ? 0 : loc.offset);
  }
}

/** Builds the records of a stat cache, numbering the groups as they come. */
export class StatCacheBuilder {
  private readonly groupIndex = new Map<string, number>();
  private readonly groups: [string, number][] = [];
  private readonly roots: Record<string, { abs: string; dirs: Record<string, DirRecords> }> = {};

  root(name: string, absPath: string): RootRecords {
    const r = new RootRecords(this);
    this.roots[name] = { abs: path.resolve(absPath), dirs: r.records };
    return r;
  }

  groupOf(loc: Location): number {
    let gi = this.groupIndex.get(loc.group);
    if (gi === undefined) {
      gi = this.groups.length;
      this.groupIndex.set(loc.group, gi);
      this.groups.push([loc.group, loc.groupSize]);
    }
    return gi;
  }

  build(key: string, recordedAt: number): StatCacheFile {
    return { v: 3, key, recordedAt, groups: this.groups, roots: this.roots };
  }
}

function fileName(storeRoot: string, key: string, roots: readonly OutputRoot[]): string {
  const id = sha256(
    JSON.stringify([key, roots.map((r) => [r.name, path.resolve(r.absPath)]).sort()]),
  );
  return path.join(storeRoot, STATCACHE_DIR, `${id}.json`);
}

export async function writeStatCache(
  storeRoot: string,
  tmpDir: string,
  roots: readonly OutputRoot[],
  cache: StatCacheFile,
): Promise<void> {
  await writeFileAtomic(fileName(storeRoot, cache.key, roots), JSON.stringify(cache), tmpDir);
}

/**
 * The cached records of one directory, checked when loaded: names, digests and numbers that
 * do not add up leave the directory out (its files are then read).
 */
export class DirLookup {
  private next = 0;
  private byName: Map<string, number> | undefined;

  constructor(
    private readonly recs: DirRecords,
    private readonly recordedAt: number,
  ) {}

  /**
   * The digest of file `name` if its size, mtime and inode are the recorded ones. Names are
   * asked for in listing order, which is the recorded order: each is found at the next record,
   * so a lookup by name is only needed where the directory changed.
   */
  digestOf(name: string, size: number, mtimeMs: number, ino: number): string | undefined {
    const n = this.recs.n;
    let i = this.next;
    if (n[i] !== name) {
      this.byName ??= new Map(n.map((x, k) => [x, k]));
      const k = this.byName.get(name);
      if (k === undefined) return undefined;
      i = k;
    }
    this.next = i + 1;
    const s = this.recs.s;
    const o = i * NUMS;
    if (s[o] !== size || s[o + 1] !== mtimeMs || s[o + 2] !== ino) return undefined;
    if (mtimeMs > this.recordedAt) return undefined;
    return this.recs.d[i];
  }
}

/** Lookup of unchanged files, directory by directory. */
export class StatLookup {
  private rootMemo: { root: OutputRoot; dirs: Record<string, DirRecords> | undefined } | undefined;

  constructor(private readonly cache: StatCacheFile | undefined) {}

  get usable(): boolean {
    return this.cache !== undefined;
  }

  /** The records of directory `dir` (relative, '' for the root) of `root`, if there are any. */
  dir(root: OutputRoot, dir: string): DirLookup | undefined {
    const c = this.cache;
    if (c === undefined) return undefined;
    let memo = this.rootMemo;
    if (memo?.root !== root) {
      // (Once per root, not per directory.)
      const r = Object.hasOwn(c.roots, root.name) ? c.roots[root.name] : undefined;
      const same =
        typeof r === 'object' &&
        r !== null &&
        r.abs === path.resolve(root.absPath) &&
        typeof r.dirs === 'object' &&
        r.dirs !== null;
      memo = this.rootMemo = { root, dirs: same ? r.dirs : undefined };
    }
    const dirs = memo.dirs;
    if (dirs === undefined || !Object.hasOwn(dirs, dir)) return undefined;
    const recs = dirs[dir] as DirRecords;
    return wellFormed(recs) ? new DirLookup(recs, c.recordedAt) : undefined;
  }

  /** The lookup of file `rel` of `root` ('' for a file root). */
  digestOf(
    root: OutputRoot,
    rel: string,
    size: number,
    mtimeMs: number,
    ino: number,
  ): string | undefined {
    const [dir, name] = splitRel(rel);
    return this.dir(root, dir)?.digestOf(name, size, mtimeMs, ino);
  }

  /** Where each grouped file of the cached entry lives (records that do not add up are skipped). */
  locations(): Map<string, Location> {
    const out = new Map<string, Location>();
    const c = this.cache;
    if (c === undefined || !Array.isArray(c.groups)) return out;
    const groups = c.groups.map((g) =>
      Array.isArray(g) &&
      typeof g[0] === 'string' &&
      DIGEST.test(g[0]) &&
      Number.isSafeInteger(g[1])
        ? g
        : undefined,
    );
    for (const r of Object.values(c.roots)) {
      if (typeof r !== 'object' || r === null || typeof r.dirs !== 'object' || r.dirs === null) {
        continue;
      }
      for (const recs of Object.values(r.dirs)) {
        if (!wellFormed(recs)) continue;
        const { d, s } = recs;
        for (let i = 0; i < d.length; i++) {
          const o = i * NUMS;
          const size = s[o] as number;
          const gi = s[o + 3] as number;
          const offset = s[o + 4] as number;
          if (gi < 0) continue;
          const g = groups[gi];
          if (g === undefined || !Number.isSafeInteger(offset) || offset < 0) continue;
          if (offset + size > g[1]) continue;
          out.set(d[i] as string, { group: g[0], groupSize: g[1], offset, size });
        }
      }
    }
    return out;
  }
}

/** Checked once per directory record (remembered): shapes, lengths, every digest. */
const checked = new WeakSet<DirRecords>();
function wellFormed(recs: DirRecords): boolean {
  if (checked.has(recs)) return true;
  if (typeof recs !== 'object' || recs === null) return false;
  const { n, d, s } = recs as Partial<DirRecords>;
  if (!Array.isArray(n) || !Array.isArray(d) || !Array.isArray(s)) return false;
  if (d.length !== n.length || s.length !== n.length * NUMS) return false;
  for (const x of n) if (typeof x !== 'string') return false;
  for (const x of d) if (typeof x !== 'string' || x.length !== 64) return false;
  for (const x of s) if (typeof x !== 'number' || !Number.isFinite(x)) return false;
  if (!HEX.test(d.join(''))) return false;
  checked.add(recs);
  return true;
}

export async function readStatCache(
  storeRoot: string,
  key: string,
  roots: readonly OutputRoot[],
): Promise<StatLookup> {
  try {
    const raw = JSON.parse(
      await fs.readFile(fileName(storeRoot, key, roots), 'utf8'),
    ) as StatCacheFile;
    if (raw.v !== 3 || raw.key !== key || typeof raw.recordedAt !== 'number') {
      return new StatLookup(undefined);
    }
    if (typeof raw.roots !== 'object' || raw.roots === null) return new StatLookup(undefined);
    return new StatLookup(raw);
  } catch {
    return new StatLookup(undefined);
  }
}
