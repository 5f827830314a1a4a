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

/** [size, mtimeMs, inode, digest], and for a grouped file [index into groups, offset]. */
export type StatRecord =
  [number, number, number, string] | [number, number, number, string, number, number];

export interface StatCacheFile {
  readonly v: 2;
  readonly key: string;
  /** Epoch ms: changes after this moment show in a file's mtime. */
  readonly recordedAt: number;
  /** The group blobs the records point into: [digest, uncompressed size]. */
  readonly groups: [string, number][];
  /** root name -> { abs path, relative path ('' for a file root) -> record } */
  readonly roots: Record<string, { abs: string; files: Record<string, StatRecord> }>;
}

/** Builds the records of a stat cache, numbering the groups as they come. */
export class StatCacheBuilder {
  private readonly groupIndex = new Map<string, number>();
  private readonly groups: [string, number][] = [];
  private readonly roots: StatCacheFile['roots'] = {};

  root(name: string, absPath: string): Record<string, StatRecord> {
    const files: Record<string, StatRecord> = {};
    this.roots[name] = { abs: path.resolve(absPath), files };
    return files;
  }

  record(size: number, mtimeMs: number, ino: number, digest: string, loc?: Location): StatRecord {
    if (loc === undefined) return [size, mtimeMs, ino, digest];
    let gi = this.groupIndex.get(loc.group);
    if (gi === undefined) {
      gi = this.groups.length;
      this.groupIndex.set(loc.group, gi);
      this.groups.push([loc.group, loc.groupSize]);
    }
    return [size, mtimeMs, ino, digest, gi, loc.offset];
  }

  build(key: string, recordedAt: number): StatCacheFile {
    return { v: 2, key, recordedAt, groups: this.groups, roots: this.roots };
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

/** Lookup of unchanged files: `digestOf(root, path, size, mtimeMs, ino)`. */
export class StatLookup {
  constructor(private readonly cache: StatCacheFile | undefined) {}

  get usable(): boolean {
    return this.cache !== undefined;
  }

  digestOf(
    root: OutputRoot,
    rel: string,
    size: number,
    mtimeMs: number,
    ino: number,
  ): string | undefined {
    const c = this.cache;
    if (c === undefined) return undefined;
    const r = c.roots[root.name];
    if (r === undefined || r.abs !== path.resolve(root.absPath)) return undefined;
    const rec = r.files[rel];
    if (rec === undefined) return undefined;
    if (rec[0] !== size || rec[1] !== mtimeMs || rec[2] !== ino) return undefined;
    if (mtimeMs > c.recordedAt) return undefined;
    return DIGEST.test(rec[3]) ? rec[3] : undefined;
  }

  /** Where each grouped file of the cached entry lives (records that do not add up are skipped). */
  locations(): Map<string, Location> {
    const out = new Map<string, Location>();
    const c = this.cache;
    if (c === undefined || !Array.isArray(c.groups)) return out;
    for (const r of Object.values(c.roots)) {
      for (const rec of Object.values(r.files)) {
        if (rec.length !== 6) continue;
        const [size, , , digest, gi, offset] = rec;
        const g = c.groups[gi];
        if (g === undefined || !DIGEST.test(g[0]) || !DIGEST.test(digest)) continue;
        if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > g[1]) continue;
        out.set(digest, { group: g[0], groupSize: g[1], offset, size });
      }
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
    const raw = JSON.parse(
      await fs.readFile(fileName(storeRoot, key, roots), 'utf8'),
    ) as StatCacheFile;
    if (raw.v !== 2 || raw.key !== key || typeof raw.recordedAt !== 'number') {
      return new StatLookup(undefined);
    }
    return new StatLookup(raw);
  } catch {
    return new StatLookup(undefined);
  }
}
