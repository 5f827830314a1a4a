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
 *   <root>/statcache/<sha256(key)>/<sha256(root paths)>.bin   (removed with the entry)
 *
 * Records are kept per directory, names in listing order, so a save finds a directory's
 * records once and then matches names in step with its own listing (no lookup per file). The
 * file is binary (`encodeStatCache`): numbers as float64, digests as 32 bytes, so writing and
 * reading it formats and parses no number.
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

/** The records of a stat cache as built (`encodeStatCache` stores them). */
export interface StatCacheFile {
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
    return { key, recordedAt, groups: this.groups, roots: this.roots };
  }
}

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
  await fs.rm(keyDir(storeRoot, key), { recursive: true, force: true });
}

const MAGIC = Buffer.from('CSTC');
const VERSION = 4;
/** 'CSTC', u32 LE version, u32 LE header bytes, u32 LE name bytes. */
const HEAD = 16;

/** The header of a stat cache file (JSON): everything but the per-file records. */
interface StatCacheHeader {
  readonly key: string;
  readonly recordedAt: number;
  readonly groups: [string, number][];
  /** Per root: its name, absolute path, and its directories with their file counts in order. */
  readonly roots: { name: string; abs: string; dirs: [string, number][] }[];
}

/**
 * A stat cache as stored: the head, the header JSON, every file name (UTF-8, NUL-separated;
 * no file name holds a NUL), zero padding to a multiple of 8, then per file its digest (32
 * bytes), then per file NUMS float64 (LE). Files come directory by directory, as the header
 * lists the directories.
 */
export function encodeStatCache(cache: StatCacheFile): Buffer {
  const roots: StatCacheHeader['roots'] = [];
  const names: string[] = [];
  const digests: string[] = [];
  const nums: number[][] = [];
  for (const [name, r] of Object.entries(cache.roots)) {
    const dirs: [string, number][] = [];
    for (const [rel, recs] of Object.entries(r.dirs)) {
      dirs.push([rel, recs.n.length]);
      for (const n of recs.n) names.push(n);
      for (const d of recs.d) digests.push(d);
      nums.push(recs.s);
    }
    roots.push({ name, abs: r.abs, dirs });
  }
  const header: StatCacheHeader = {
    key: cache.key,
    recordedAt: cache.recordedAt,
    groups: cache.groups,
    roots,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const nameBytes = Buffer.from(names.join('\0'), 'utf8');
  const start = HEAD + headerBytes.length + nameBytes.length;
  const digestsAt = Math.ceil(start / 8) * 8;
  const numsAt = digestsAt + digests.length * 32;
  const out = Buffer.alloc(numsAt + digests.length * NUMS * 8);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 4);
  out.writeUInt32LE(headerBytes.length, 8);
  out.writeUInt32LE(nameBytes.length, 12);
  headerBytes.copy(out, HEAD);
  nameBytes.copy(out, HEAD + headerBytes.length);
  digests.forEach((d, i) => out.write(d, digestsAt + i * 32, 32, 'hex'));
  const f64 = new Float64Array(out.buffer, out.byteOffset + numsAt, digests.length * NUMS);
  let o = 0;
  for (const s of nums) {
    f64.set(s, o);
    o += s.length;
  }
  return out;
}

export async function writeStatCache(
  storeRoot: string,
  tmpDir: string,
  roots: readonly OutputRoot[],
  cache: StatCacheFile,
): Promise<void> {
  await writeFileAtomic(fileName(storeRoot, cache.key, roots), encodeStatCache(cache), tmpDir);
}

/** A stat cache file read back: its header and the records of every file, flat. */
interface Decoded {
  readonly header: StatCacheHeader;
  readonly names: string[];
  readonly body: Buffer;
  readonly digestsAt: number;
  readonly nums: Float64Array;
}

/** Reads a stat cache file; undefined when anything does not add up. */
function decodeStatCache(body: Buffer, key: string): Decoded | undefined {
  if (body.length < HEAD || !body.subarray(0, 4).equals(MAGIC)) return undefined;
  if (body.readUInt32LE(4) !== VERSION) return undefined;
  const headerLen = body.readUInt32LE(8);
  const namesLen = body.readUInt32LE(12);
  if (HEAD + headerLen + namesLen > body.length) return undefined;
  const header = JSON.parse(body.toString('utf8', HEAD, HEAD + headerLen)) as StatCacheHeader;
  if (header.key !== key || typeof header.recordedAt !== 'number') return undefined;
  if (!Array.isArray(header.roots) || !Array.isArray(header.groups)) return undefined;
  let files = 0;
  for (const r of header.roots) {
    if (typeof r?.name !== 'string' || typeof r.abs !== 'string' || !Array.isArray(r.dirs)) {
      return undefined;
    }
    for (const d of r.dirs) {
      if (!Array.isArray(d) || typeof d[0] !== 'string' || !Number.isSafeInteger(d[1])) {
        return undefined;
      }
      if (d[1] < 0) return undefined;
      files += d[1];
    }
  }
  const start = HEAD + headerLen;
  const names = files === 0 ? [] : body.toString('utf8', start, start + namesLen).split('\0');
  if (names.length !== files) return undefined;
  const digestsAt = Math.ceil((start + namesLen) / 8) * 8;
  const numsAt = digestsAt + files * 32;
  if (body.length !== numsAt + files * NUMS * 8) return undefined;
  // (readFile gives a buffer of its own, 8-aligned; a copy otherwise.)
  const aligned = (body.byteOffset + numsAt) % 8 === 0 ? body : Buffer.from(body);
  const nums = new Float64Array(aligned.buffer, aligned.byteOffset + numsAt, files * NUMS);
  return { header, names, body, digestsAt, nums };
}

/** The digest of file `f` of a decoded stat cache. */
function digestAt(c: Decoded, f: number): string {
  const at = c.digestsAt + f * 32;
  return c.body.toString('hex', at, at + 32);
}

/** The cached records of one directory: files [first, first + count) of the decoded file. */
export class DirLookup {
  private next = 0;
  private byName: Map<string, number> | undefined;

  constructor(
    private readonly c: Decoded,
    private readonly first: number,
    private readonly count: number,
  ) {}

  /**
   * The digest of file `name` if its size, mtime and inode are the recorded ones. Names are
   * asked for in listing order, which is the recorded order: each is found at the next record,
   * so a lookup by name is only needed where the directory changed.
   */
  digestOf(name: string, size: number, mtimeMs: number, ino: number): string | undefined {
    const names = this.c.names;
    let i = this.next;
    if (i >= this.count || names[this.first + i] !== name) {
      if (this.byName === undefined) {
        this.byName = new Map();
        for (let k = 0; k < this.count; k++) this.byName.set(names[this.first + k] as string, k);
      }
      const k = this.byName.get(name);
      if (k === undefined) return undefined;
      i = k;
    }
    this.next = i + 1;
    const f = this.first + i;
    const s = this.c.nums;
    const o = f * NUMS;
    if (s[o] !== size || s[o + 1] !== mtimeMs || s[o + 2] !== ino) return undefined;
    if (mtimeMs > this.c.header.recordedAt) return undefined;
    return digestAt(this.c, f);
  }
}

/** Lookup of unchanged files, directory by directory. */
export class StatLookup {
  /** Per root name: its absolute path and its directories (first file, count). */
  private readonly roots = new Map<string, { abs: string; dirs: Map<string, [number, number]> }>();
  private rootMemo:
    { root: OutputRoot; dirs: Map<string, [number, number]> | undefined } | undefined;

  constructor(private readonly cache: Decoded | undefined) {
    let first = 0;
    for (const r of cache?.header.roots ?? []) {
      const dirs = new Map<string, [number, number]>();
      for (const [rel, count] of r.dirs) {
        dirs.set(rel, [first, count]);
        first += count;
      }
      this.roots.set(r.name, { abs: r.abs, dirs });
    }
  }

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
      const r = this.roots.get(root.name);
      const same = r !== undefined && r.abs === path.resolve(root.absPath);
      memo = this.rootMemo = { root, dirs: same ? r.dirs : undefined };
    }
    const at = memo.dirs?.get(dir);
    return at === undefined ? undefined : new DirLookup(c, at[0], at[1]);
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
    if (c === undefined) return out;
    const groups = c.header.groups.map((g) =>
      Array.isArray(g) &&
      typeof g[0] === 'string' &&
      DIGEST.test(g[0]) &&
      Number.isSafeInteger(g[1])
        ? g
        : undefined,
    );
    const s = c.nums;
    for (let f = 0; f < c.names.length; f++) {
      const o = f * NUMS;
      const size = s[o] as number;
      const gi = s[o + 3] as number;
      const offset = s[o + 4] as number;
      if (gi < 0) continue;
      const g = groups[gi];
      if (g === undefined || !Number.isSafeInteger(offset) || offset < 0) continue;
      if (!Number.isSafeInteger(size) || size < 0 || offset + size > g[1]) continue;
      out.set(digestAt(c, f), { group: g[0], groupSize: g[1], offset, size });
    }
    return out;
  }
}

export async function readStatCache(
  storeRoot: string,
  key: string,
  roots: readonly OutputRoot[],
): Promise<StatLookup> {
  try {
    return new StatLookup(decodeStatCache(await fs.readFile(fileName(storeRoot, key, roots)), key));
  } catch {
    return new StatLookup(undefined);
  }
}
