/**
 * Entry tables: the one encoding of an entry (its manifest, with where each grouped file
 * lives): its artifact in the local store, the entry a pack carries (pack.ts), and its stat
 * caches (statcache.ts). One row per entry, kept directory by
 * directory, in listing order:
 *
 *   'CTBL', u32 LE version, u32 LE header bytes, u32 LE name bytes
 *   header JSON  { key?, recordedAt?, groups: [[digest, uncompressed size]],
 *                  roots: [{ name, kind, mode?, mtimeMs?, abs?, dirs: [[rel dir, rows]] }] }
 *   names        UTF-8, NUL-separated: each row's name, a symlink's target right after it
 *   zero padding to a multiple of 8
 *   digests      32 bytes per row (zeros but for files)
 *   numbers      NUMS float64 (LE) per row: kind, mode, size, mtimeMs, inode, group index
 *                (-1: a blob of its own), offset in the group; a symlink's size is its
 *                anchor (0: none, else 1 + its place in LINK_ANCHORS: manifest.ts)
 *
 * A save builds its rows while the walk lists the directories, and takes the rows of files it
 * did not read from the stat cache (their digests are copied as bytes), so an unchanged file
 * costs the save no string, object or JSON of its own. The same bytes are the new entry's
 * artifact and the stat cache of the roots it was saved from. A table read from disk may be
 * hostile: `decodeTable` checks its structure, and `tableManifest` rebuilds the manifest and
 * hands it to `parseManifest`, the one place that decides what restore accepts.
 */
import { StoreError } from '../errors.js';
import type { Location } from './blobs.js';
import {
  LINK_ANCHORS,
  MAX_ENTRIES,
  MAX_ROOTS,
  type LinkAnchor,
  type RootKind,
} from './manifest.js';

const MAGIC = Buffer.from('CTBL');
const VERSION = 1;
const HEAD = 16;
/** Numbers per row. */
export const NUMS = 7;
/** Where each number sits in a row. */
export const AT = { kind: 0, mode: 1, size: 2, mtimeMs: 3, ino: 4, group: 5, offset: 6 } as const;
/** Row kinds (0: dropped while building, never stored). */
export const ROW = { gone: 0, file: 1, dir: 2, symlink: 3 } as const;
const DIGEST = /^[0-9a-f]{64}$/;

/** The rows of one directory as they are built (a save's walk, or a manifest's entries). */
export class DirRows {
  count = 0;
  readonly names: string[] = [];
  /** Symlink targets by row (rows of other kinds have none). */
  targets: Map<number, string> | undefined;
  nums: Float64Array;
  digests: Buffer;
  /** A row was dropped: encoding leaves it out. */
  dropped = false;

  constructor(capacity = 8) {
    const n = Math.max(1, capacity);
    this.nums = new Float64Array(n * NUMS);
    this.digests = Buffer.alloc(n * 32);
  }

  /** Appends a row (group index -1, offset 0, digest zero); returns its index. */
  add(
    kind: number,
    name: string,
    mode: number,
    size: number,
    mtimeMs: number,
    ino: number,
  ): number {
    if (this.count * NUMS >= this.nums.length) this.grow();
    const j = this.count++;
    this.names.push(name);
    const s = this.nums;
    const o = j * NUMS;
    s[o] = kind;
    s[o + 1] = mode;
    s[o + 2] = size;
    s[o + 3] = mtimeMs;
    s[o + 4] = ino;
    s[o + 5] = -1;
    s[o + 6] = 0;
    return j;
  }

  addSymlink(
    name: string,
    mode: number,
    mtimeMs: number,
    target: string,
    anchor?: LinkAnchor,
  ): number {
    const j = this.add(ROW.symlink, name, mode, 0, mtimeMs, 0);
    (this.targets ??= new Map()).set(j, target);
    if (anchor !== undefined) this.anchorLink(j, target, anchor);
    return j;
  }

  /** Symlink row j leaves its root: its target is `target`, read as `anchor` says. */
  anchorLink(j: number, target: string, anchor: LinkAnchor): void {
    (this.targets ??= new Map()).set(j, target);
    this.set(j, AT.size, 1 + LINK_ANCHORS.indexOf(anchor));
  }

  /** Sets row j's digest from its hex form. */
  setDigest(j: number, hex: string): void {
    this.digests.write(hex, j * 32, 32, 'hex');
  }

  set(j: number, at: number, value: number): void {
    this.nums[j * NUMS + at] = value;
  }

  get(j: number, at: number): number {
    return this.nums[j * NUMS + at] as number;
  }

  drop(j: number): void {
    this.nums[j * NUMS] = ROW.gone;
    this.dropped = true;
  }

  private grow(): void {
    const nums = new Float64Array(this.nums.length * 2);
    nums.set(this.nums);
    this.nums = nums;
    const digests = Buffer.alloc(this.digests.length * 2);
    this.digests.copy(digests);
    this.digests = digests;
  }
}

/** One root of a table being encoded. */
export interface TableRoot {
  readonly name: string;
  readonly kind: RootKind;
  readonly mode?: number;
  readonly mtimeMs?: number;
  /** Absolute path (stat caches: the rows describe the files found there). */
  readonly abs?: string;
  /** Its directories, each with its rows ('' is the root; a file root is '' with one row ''). */
  readonly dirs: readonly (readonly [string, DirRows])[];
}

export interface TableHeader {
  readonly key?: string;
  /** Epoch ms: changes after this moment show in a file's mtime (stat caches). */
  readonly recordedAt?: number;
  readonly groups: [string, number][];
  readonly roots: {
    name: string;
    kind: RootKind;
    mode?: number;
    mtimeMs?: number;
    abs?: string;
    dirs: [string, number][];
  }[];
}

/** The table of `roots`, as stored. */
export function encodeTable(
  head: { key?: string; recordedAt?: number; groups: [string, number][] },
  roots: readonly TableRoot[],
): Buffer {
  const names: string[] = [];
  let rows = 0;
  const headerRoots: TableHeader['roots'] = roots.map((r) => {
    const dirs: [string, number][] = r.dirs.map(([rel, d]) => {
      let live = 0;
      for (let j = 0; j < d.count; j++) {
        if (d.dropped && d.nums[j * NUMS] === ROW.gone) continue;
        live++;
        names.push(d.names[j] as string);
        const target = d.targets?.get(j);
        if (target !== undefined) names.push(target);
      }
      rows += live;
      return [rel, live];
    });
    return {
      name: r.name,
      kind: r.kind,
      ...(r.mode !== undefined ? { mode: r.mode } : {}),
      ...(r.mtimeMs !== undefined ? { mtimeMs: r.mtimeMs } : {}),
      ...(r.abs !== undefined ? { abs: r.abs } : {}),
      dirs,
    };
  });
  const header: TableHeader = { ...head, roots: headerRoots };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const nameBytes = Buffer.from(names.join('\0'), 'utf8');
  const digestsAt = Math.ceil((HEAD + headerBytes.length + nameBytes.length) / 8) * 8;
  const numsAt = digestsAt + rows * 32;
  const out = Buffer.alloc(numsAt + rows * NUMS * 8);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 4);
  out.writeUInt32LE(headerBytes.length, 8);
  out.writeUInt32LE(nameBytes.length, 12);
  headerBytes.copy(out, HEAD);
  nameBytes.copy(out, HEAD + headerBytes.length);
  const nums = new Float64Array(out.buffer, out.byteOffset + numsAt, rows * NUMS);
  let row = 0;
  for (const r of roots) {
    for (const [, d] of r.dirs) {
      if (!d.dropped) {
        d.digests.copy(out, digestsAt + row * 32, 0, d.count * 32);
        nums.set(d.nums.subarray(0, d.count * NUMS), row * NUMS);
        row += d.count;
        continue;
      }
      for (let j = 0; j < d.count; j++) {
        if (d.nums[j * NUMS] === ROW.gone) continue;
        d.digests.copy(out, digestsAt + row * 32, j * 32, j * 32 + 32);
        nums.set(d.nums.subarray(j * NUMS, j * NUMS + NUMS), row * NUMS);
        row++;
      }
    }
  }
  return out;
}

/** Whether `body` starts as a table does. */
function isTable(body: Buffer): boolean {
  return body.length >= HEAD && body.subarray(0, 4).equals(MAGIC);
}

/** A table read back, its structure checked (`decodeTable`). */
export interface Table {
  readonly header: TableHeader;
  readonly body: Buffer;
  readonly rows: number;
  /** Each row's name. */
  readonly names: string[];
  /** Symlink targets by row. */
  readonly targets: Map<number, string>;
  readonly digestsAt: number;
  readonly nums: Float64Array;
  /** Per root (header order): directory -> [first row, rows]. */
  readonly dirs: Map<string, [number, number]>[];
}

/**
 * Reads the structure of an untrusted table: the header's shape, the counts, the lengths, the
 * row kinds. Throws StoreError on anything that does not add up.
 */
export function decodeTable(body: Buffer): Table {
  const bad: (why: string) => never = (why) => {
    throw new StoreError(`malformed table: ${why}`);
  };
  if (!isTable(body)) bad('not a table');
  if (body.readUInt32LE(4) !== VERSION) bad('unknown version');
  const headerLen = body.readUInt32LE(8);
  const namesLen = body.readUInt32LE(12);
  if (HEAD + headerLen + namesLen > body.length) bad('shorter than its header says');
  let header: TableHeader;
  try {
    header = JSON.parse(body.toString('utf8', HEAD, HEAD + headerLen)) as TableHeader;
  } catch {
    bad('header is not JSON');
  }
  if (typeof header !== 'object' || header === null) bad('header is not an object');
  if (header.key !== undefined && typeof header.key !== 'string') bad('bad key');
  if (header.recordedAt !== undefined && !Number.isFinite(header.recordedAt)) bad('bad time');
  if (!Array.isArray(header.groups)) bad('groups is not a list');
  const groupNames = new Set<string>();
  for (const g of header.groups) {
    if (!Array.isArray(g) || typeof g[0] !== 'string' || !DIGEST.test(g[0])) bad('bad group');
    if (!Number.isSafeInteger(g[1]) || g[1] < 0) bad('bad group size');
    if (groupNames.has(g[0])) bad(`group ${g[0]} listed twice`);
    groupNames.add(g[0]);
  }
  if (!Array.isArray(header.roots) || header.roots.length > MAX_ROOTS) bad('bad roots list');
  let rows = 0;
  const dirs: Map<string, [number, number]>[] = [];
  for (const r of header.roots) {
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string') bad('bad root');
    if (r.kind !== 'dir' && r.kind !== 'file' && r.kind !== 'absent') bad('bad root kind');
    if (r.abs !== undefined && typeof r.abs !== 'string') bad('bad root path');
    if (!Array.isArray(r.dirs)) bad('bad directory list');
    const byRel = new Map<string, [number, number]>();
    for (const d of r.dirs) {
      if (!Array.isArray(d) || typeof d[0] !== 'string' || !Number.isSafeInteger(d[1])) {
        bad('bad directory');
      }
      if (d[1] < 0 || byRel.has(d[0])) bad(`bad directory ${JSON.stringify(d[0])}`);
      byRel.set(d[0], [rows, d[1]]);
      rows += d[1];
      if (rows > MAX_ENTRIES) bad('too many rows');
    }
    dirs.push(byRel);
  }
  const namesAt = HEAD + headerLen;
  const digestsAt = Math.ceil((namesAt + namesLen) / 8) * 8;
  const numsAt = digestsAt + rows * 32;
  if (body.length !== numsAt + rows * NUMS * 8) bad('wrong length');
  // (readFile gives a buffer of its own, 8-aligned; a copy otherwise.)
  const aligned = (body.byteOffset + numsAt) % 8 === 0 ? body : Buffer.from(body);
  const nums = new Float64Array(aligned.buffer, aligned.byteOffset + numsAt, rows * NUMS);
  const all =
    rows === 0 && namesLen === 0
      ? []
      : body.toString('utf8', namesAt, namesAt + namesLen).split('\0');
  const names: string[] = new Array<string>(rows);
  const targets = new Map<number, string>();
  let n = 0;
  for (let i = 0; i < rows; i++) {
    const kind = nums[i * NUMS];
    if (kind !== ROW.file && kind !== ROW.dir && kind !== ROW.symlink) bad(`row ${i}: bad kind`);
    if (n >= all.length) bad('too few names');
    names[i] = all[n++] as string;
    if (kind === ROW.symlink) {
      if (n >= all.length) bad('too few names');
      targets.set(i, all[n++] as string);
    }
  }
  if (n !== all.length) bad('too many names');
  return { header, body: aligned, rows, names, targets, digestsAt, nums, dirs };
}

/** The 32 digest bytes of row `i` of a table (a view, not a copy). */
export function digestBytes(t: Table, i: number): Buffer {
  const at = t.digestsAt + i * 32;
  return t.body.subarray(at, at + 32);
}

/** The digest of row `i` of a table. */
export function digestAt(t: Table, i: number): string {
  return digestBytes(t, i).toString('hex');
}

/** The group row `i`'s content lives in, if it is grouped and its numbers add up; else -1. */
export function groupAt(t: Table, i: number): number {
  const s = t.nums;
  const o = i * NUMS;
  const gi = s[o + AT.group] as number;
  const g = gi >= 0 ? t.header.groups[gi] : undefined;
  if (g === undefined) return -1;
  const size = s[o + AT.size] as number;
  const offset = s[o + AT.offset] as number;
  if (!Number.isSafeInteger(offset) || offset < 0) return -1;
  if (!Number.isSafeInteger(size) || size < 0 || offset + size > g[1]) return -1;
  return gi;
}

/** Where row `i`'s content lives if it is grouped and its numbers add up; else undefined. */
export function locationAt(t: Table, i: number): Location | undefined {
  const gi = groupAt(t, i);
  if (gi < 0) return undefined;
  const [group, groupSize] = t.header.groups[gi] as [string, number];
  const o = i * NUMS;
  return {
    group,
    groupSize,
    offset: t.nums[o + AT.offset] as number,
    size: t.nums[o + AT.size] as number,
  };
}

/** The group blobs a table's rows point into, numbered as they come. */
export class GroupList {
  private readonly index = new Map<string, number>();
  readonly list: [string, number][] = [];

  add(group: string, size: number): number {
    let gi = this.index.get(group);
    if (gi === undefined) {
      gi = this.list.length;
      this.index.set(group, gi);
      this.list.push([group, size]);
    }
    return gi;
  }
}
