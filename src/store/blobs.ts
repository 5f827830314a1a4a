/**
 * Content-addressed blobs. Every blob is one zstd frame named by the sha256 of its content:
 *
 *   <root>/blobs/<aa>/<sha256>        a compressed frame, or (incompressible content, "stored as
 *                                     it is") a frame of raw blocks: `isRawFrame` tells them
 *                                     apart, any zstd decoder reads both
 *   <root>/blobs/<aa>/<sha256>        a group blob: the contents of several small files of one
 *                                     save back to back, compressed together (small files
 *                                     compress far worse alone); named by the digest of the
 *                                     concatenation, so it is an ordinary blob on disk
 *   <root>/blobs/<aa>/<id>.loc        a locator (entries saved before artifacts became tables):
 *                                     for one manifest, where each grouped file lives (group,
 *                                     offset); `id` is `locatorId(manifest)`; still read
 *
 * A file's manifest digest is always the sha256 of its own content; a grouped file has no blob
 * of that name: an entry's artifact says where it lives (table.ts; `attach`), or, for an entry
 * in the JSON form, the locator of its manifest. Writes go
 * through `<root>/tmp/` and a rename, so a blob is either absent or complete; concurrent writers
 * of one blob are harmless (same content). Reads always verify.
 */
import { createHash, type Hash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { sha256 } from '../util/bytes.js';
import { tempName, writeFileAtomic } from '../util/fsx.js';
import { isRawFrame, rawFrame, type Codec } from './codec.js';
import { manifestFiles, type Manifest } from './manifest.js';
import { MIN_SAVING, sharedPool, type PoolDirs, type WorkerPool } from './pool.js';

const DIGEST = /^[0-9a-f]{64}$/;
const LOCATOR_SUFFIX = '.loc';

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.dev === b.dev;
}

/** Where a grouped file's content lives. */
export interface Location {
  /** The group blob's digest. */
  readonly group: string;
  /** Uncompressed size of the whole group. */
  readonly groupSize: number;
  readonly offset: number;
  readonly size: number;
}

/** A locator's content (also carried as it is in a pack's header, pack.ts). */
export interface LocatorFile {
  readonly v: 1;
  /** [group digest, uncompressed size] */
  readonly groups: [string, number][];
  /** [file digest, index into groups, offset, size] */
  readonly files: [string, number, number, number][];
}

/** The locator of `m` for the files in `locs`, in manifest order; undefined when none is grouped. */
export function buildLocator(
  m: Manifest,
  locs: ReadonlyMap<string, Location>,
): LocatorFile | undefined {
  const groups = new Map<string, number>();
  const file: LocatorFile = { v: 1, groups: [], files: [] };
  const seen = new Set<string>();
  for (const f of manifestFiles(m)) {
    const loc = locs.get(f.digest);
    if (loc === undefined || seen.has(f.digest)) continue;
    seen.add(f.digest);
    let gi = groups.get(loc.group);
    if (gi === undefined) {
      gi = file.groups.length;
      groups.set(loc.group, gi);
      file.groups.push([loc.group, loc.groupSize]);
    }
    file.files.push([f.digest, gi, loc.offset, loc.size]);
  }
  return file.files.length === 0 ? undefined : file;
}

/**
 * The locations an untrusted locator describes; throws StoreError on anything malformed (a
 * bad shape, a name that is not a digest, a slice outside its group, a group listed twice).
 */
export function parseLocator(raw: unknown, what: string): Map<string, Location> {
  const bad: (why: string) => never = (why) => {
    throw new StoreError(`locator ${what} is malformed: ${why}`);
  };
  const l = raw as Partial<LocatorFile> | null;
  if (typeof l !== 'object' || l === null || l.v !== 1) bad('not a version 1 locator');
  const groups = (l as LocatorFile).groups;
  const files = (l as LocatorFile).files;
  if (!Array.isArray(groups) || !Array.isArray(files)) bad('groups or files is not a list');
  const names = new Set<string>();
  for (const g of groups) {
    if (!Array.isArray(g) || typeof g[0] !== 'string' || !DIGEST.test(g[0])) bad('bad group');
    if (!Number.isSafeInteger(g[1]) || g[1] < 0) bad('bad group size');
    if (names.has(g[0])) bad(`group ${g[0]} listed twice`);
    names.add(g[0]);
  }
  const out = new Map<string, Location>();
  for (const f of files) {
    if (!Array.isArray(f)) bad('bad file');
    const [digest, gi, offset, size] = f;
    const g = Number.isSafeInteger(gi) ? groups[gi] : undefined;
    if (
      g === undefined ||
      typeof digest !== 'string' ||
      !DIGEST.test(digest) ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      offset < 0 ||
      size < 0 ||
      offset + size > g[1]
    ) {
      bad(`bad file record ${JSON.stringify(f)?.slice(0, 200)}`);
    }
    out.set(digest, { group: g[0], groupSize: g[1], offset, size });
  }
  return out;
}

/**
 * A locator on disk, as the last stores to write them did: 'CLOC', u32 LE version, u32 LE
 * group count, u32 LE file count; per group its digest (32 bytes) and uncompressed size (f64
 * LE); per grouped file its digest (32 bytes), u32 LE group index, f64 LE offset, f64 LE size.
 */
const LOCATOR_MAGIC = Buffer.from('CLOC');
const LOCATOR_VERSION = 2;
const LOCATOR_HEAD = 16;
/** Per group: its digest (32 bytes), its uncompressed size (f64 LE). */
const LOCATOR_GROUP = 40;
/** Per grouped file: its digest (32 bytes), u32 LE group index, f64 LE offset, f64 LE size. */
const LOCATOR_FILE = 52;

/** Whether `body` is a locator in the binary form. */
function isBinaryLocator(body: Buffer): boolean {
  return body.length >= LOCATOR_HEAD && body.subarray(0, 4).equals(LOCATOR_MAGIC);
}

/**
 * The locations an untrusted binary locator describes; throws StoreError on anything
 * malformed (a wrong length, a group listed twice, a slice outside its group).
 */
export function decodeLocator(body: Buffer, what: string): Map<string, Location> {
  const bad: (why: string) => never = (why) => {
    throw new StoreError(`locator ${what} is malformed: ${why}`);
  };
  if (!isBinaryLocator(body)) bad('not a locator');
  if (body.readUInt32LE(4) !== LOCATOR_VERSION) bad('unknown version');
  const nGroups = body.readUInt32LE(8);
  const nFiles = body.readUInt32LE(12);
  if (body.length !== LOCATOR_HEAD + nGroups * LOCATOR_GROUP + nFiles * LOCATOR_FILE) {
    bad('wrong length');
  }
  const groups: [string, number][] = [];
  const names = new Set<string>();
  let o = LOCATOR_HEAD;
  for (let i = 0; i < nGroups; i++, o += LOCATOR_GROUP) {
    const name = body.toString('hex', o, o + 32);
    const size = body.readDoubleLE(o + 32);
    if (!Number.isSafeInteger(size) || size < 0) bad('bad group size');
    if (names.has(name)) bad(`group ${name} listed twice`);
    names.add(name);
    groups.push([name, size]);
  }
  const out = new Map<string, Location>();
  for (let i = 0; i < nFiles; i++, o += LOCATOR_FILE) {
    const digest = body.toString('hex', o, o + 32);
    const g = groups[body.readUInt32LE(o + 32)];
    const offset = body.readDoubleLE(o + 36);
    const size = body.readDoubleLE(o + 44);
    if (
      g === undefined ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      offset < 0 ||
      size < 0 ||
      offset + size > g[1]
    ) {
      bad(`bad file record ${i}`);
    }
    out.set(digest, { group: g[0], groupSize: g[1], offset, size });
  }
  return out;
}

/** The blobs holding `m`'s content, once each: a grouped file's group, else its own digest. */
export function contentBlobs(m: Manifest, locs: ReadonlyMap<string, Location>): Set<string> {
  const out = new Set<string>();
  for (const f of manifestFiles(m)) out.add(locs.get(f.digest)?.group ?? f.digest);
  return out;
}

/** The name of a manifest's locator: the digest of its files' digests and sizes, in order. */
export function locatorId(m: Manifest): string {
  // (A save asks for it when writing the locator and again when committing: remembered per
  // manifest object; manifests are never changed once built.)
  let id = locatorIds.get(m);
  if (id === undefined) {
    const lines: string[] = [];
    for (const f of manifestFiles(m)) lines.push(`${f.digest} ${f.size}\n`);
    id = sha256(lines.join(''));
    locatorIds.set(m, id);
  }
  return id;
}

const locatorIds = new WeakMap<Manifest, string>();

export { isRawFrame };

/** The most bytes of a frame read from a file at once. */
export const FRAME_PIECE_BYTES = 1024 * 1024;

/**
 * The `length` bytes of `fh` from `start`, in fresh buffers of at most FRAME_PIECE_BYTES;
 * StoreError when the file ends first (`what` names the place for the message).
 */
export async function* fileRange(
  fh: FileHandle,
  start: number,
  length: number,
  what: string,
): AsyncGenerator<Buffer> {
  let pos = start;
  const end = start + length;
  while (pos < end) {
    const buf = Buffer.allocUnsafe(Math.min(FRAME_PIECE_BYTES, end - pos));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
      if (bytesRead === 0) throw new StoreError(`${what} is truncated`);
      got += bytesRead;
    }
    pos += got;
    yield buf;
  }
}

/** A grouped file inside a group blob: its slice of the content and the digest it must have. */
export interface Member {
  readonly digest: string;
  readonly offset: number;
  readonly size: number;
}

/** What a blob must hold: `size` bytes of content and, for a group, its members' slices. */
export interface BlobNeed {
  readonly size: number;
  readonly members: readonly Member[];
}

/**
 * Checks a blob's content as it streams by, piece by piece, never holding more than one piece:
 * the sha256 of the whole, and of each member's slice (members may come in any order, even
 * overlap: a hostile locator's are checked like any other).
 */
class ContentCheck {
  private readonly whole = createHash('sha256');
  private readonly members: Member[];
  private next = 0;
  private active: { m: Member; hash: Hash }[] = [];
  private pos = 0;

  constructor(
    private readonly name: string,
    need: BlobNeed,
  ) {
    this.members = [...need.members].sort((a, b) => a.offset - b.offset);
  }

  update(piece: Buffer): void {
    this.whole.update(piece);
    const start = this.pos;
    const end = start + piece.length;
    while (this.next < this.members.length && (this.members[this.next] as Member).offset < end) {
      this.active.push({ m: this.members[this.next] as Member, hash: createHash('sha256') });
      this.next++;
    }
    if (this.active.length > 0) {
      this.active = this.active.filter(({ m, hash }) => {
        const from = Math.max(m.offset, start);
        const to = Math.min(m.offset + m.size, end);
        if (to > from) hash.update(piece.subarray(from - start, to - start));
        if (m.offset + m.size > end) return true;
        this.check(m, hash);
        return false;
      });
    }
    this.pos = end;
  }

  /** After the last piece (the decoder has checked the size). */
  finish(digest: string): void {
    if (this.whole.digest('hex') !== digest) {
      throw new StoreError(`blob ${this.name}: content does not match its digest`);
    }
    // Left: slices reaching past the end (the locator checks refuse them before), and empty
    // members at the very end.
    for (const { m } of this.active) this.pastEnd(m);
    for (const m of this.members.slice(this.next)) {
      if (m.size > 0 || m.offset > this.pos) this.pastEnd(m);
      this.check(m, createHash('sha256'));
    }
  }

  private pastEnd(m: Member): never {
    throw new StoreError(`blob ${this.name}: grouped file ${m.digest} lies past its end`);
  }

  private check(m: Member, hash: Hash): void {
    if (hash.digest('hex') !== m.digest) {
      throw new StoreError(`blob ${this.name}: grouped file ${m.digest} does not match its digest`);
    }
  }
}

export class BlobStore {
  /** digest -> location of every grouped file this process has read an artifact or locator for. */
  private readonly locations = new Map<string, Location>();

  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
    private readonly codec: Codec,
  ) {}

  /** The uncompressed copies used for hard links and clones (materialize.ts). */
  get unpackedDir(): string {
    return path.join(path.dirname(this.dir), 'unpacked');
  }

  get dirs(): PoolDirs {
    return { blobDir: this.dir, tmpDir: this.tmpDir };
  }

  pool(): WorkerPool {
    return sharedPool();
  }

  pathOf(digest: string): string {
    if (!DIGEST.test(digest)) throw new StoreError(`not a sha256 digest: ${digest}`);
    return path.join(this.dir, digest.slice(0, 2), digest);
  }

  private locatorPath(id: string): string {
    return `${this.pathOf(id)}${LOCATOR_SUFFIX}`;
  }

  /** Size on disk of the standalone blob `digest`, or undefined when there is none. */
  async ownSize(digest: string): Promise<number | undefined> {
    try {
      const st = await fs.stat(this.pathOf(digest));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** Where grouped content `digest` lives, from the locators already read (no disk access). */
  located(digest: string): Location | undefined {
    return this.locations.get(digest);
  }

  /**
   * Where the grouped files of `m` live: what its artifact carried (table.ts), or else (an
   * artifact in the JSON form) its locator file, if it has one.
   */
  async loadLocator(m: Manifest): Promise<Map<string, Location>> {
    const carried = this.carried.get(m);
    if (carried !== undefined) return new Map(carried);
    return this.readLocatorFile(this.locatorPath(locatorId(m)));
  }

  /** The locations an artifact in table form carries for its manifest `m`. */
  attach(m: Manifest, locs: Map<string, Location>): void {
    this.carried.set(m, locs);
    this.learn(locs);
  }

  private readonly carried = new WeakMap<Manifest, Map<string, Location>>();

  /**
   * Blobs `m` needs on disk: standalone digests, group digests, and (an artifact in the JSON
   * form) its locator (name -> size).
   */
  async referencedBlobs(m: Manifest): Promise<Map<string, number | undefined>> {
    const locs = await this.loadLocator(m);
    const out = new Map<string, number | undefined>();
    for (const name of contentBlobs(m, locs)) out.set(name, await this.ownSize(name));
    if (locs.size > 0 && !this.carried.has(m)) {
      const id = locatorId(m);
      const st = await fs.stat(this.locatorPath(id)).catch(() => undefined);
      out.set(`${id}${LOCATOR_SUFFIX}`, st?.size);
    }
    return out;
  }

  /**
   * The locations in a locator file. The last one read or written is kept in memory while the
   * file's size, mtime and inode stay the same (a save's commit reads back what it just wrote).
   */
  private async readLocatorFile(file: string): Promise<Map<string, Location>> {
    let st: Stats;
    try {
      st = await fs.stat(file);
    } catch {
      return new Map();
    }
    const memo = this.locatorMemo;
    if (memo?.file === file && sameFile(memo.st, st)) return new Map(this.learn(memo.locs));
    let body: Buffer;
    try {
      body = await fs.readFile(file);
    } catch {
      return new Map();
    }
    let locs: Map<string, Location>;
    try {
      if (isBinaryLocator(body)) {
        locs = decodeLocator(body, path.basename(file));
      } else {
        // The first form (still read): u32 BE length, then a zstd frame of JSON; a locator is
        // tens of bytes per grouped file, so 64 MiB bounds a hostile one.
        const len = body.readUInt32BE(0);
        if (len > 64 * 1024 * 1024) throw new Error('too large');
        const text = this.codec.decompress(body.subarray(4), len).toString('utf8');
        locs = parseLocator(JSON.parse(text), path.basename(file));
      }
    } catch (err) {
      throw new StoreError(`unreadable locator ${path.basename(file)}: ${err}`);
    }
    this.locatorMemo = { file, st, locs };
    return new Map(this.learn(locs));
  }

  private locatorMemo: { file: string; st: Stats; locs: Map<string, Location> } | undefined;

  /** Remembers the locations (for `located`); returns them. */
  private learn(locs: Map<string, Location>): Map<string, Location> {
    for (const [d, loc] of locs) this.locations.set(d, loc);
    return locs;
  }

  /**
   * Stores `content` (whose sha256 is `digest`) unless the blob exists. Returns the stored size
   * and whether this call wrote it. Incompressible content is stored as it is (raw frame).
   */
  async put(digest: string, content: Buffer): Promise<{ stored: number; written: boolean }> {
    const existing = await this.ownSize(digest);
    if (existing !== undefined) return { stored: existing, written: false };
    let frame = this.codec.compress(content);
    if (frame.length > content.length * (1 - MIN_SAVING)) frame = rawFrame(content);
    await writeFileAtomic(this.pathOf(digest), frame, this.tmpDir);
    return { stored: frame.length, written: true };
  }

  /**
   * Decompresses the frame `source` yields and checks its content against `need` and the
   * digest `name` (and each member's slice against its digest), in bounded pieces: memory
   * stays the same whatever sizes `need` declares. Throws StoreError on any difference.
   */
  async verifyStream(
    name: string,
    need: BlobNeed,
    source: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const check = new ContentCheck(name, need);
    await this.codec.decompressStream(source, need.size, (piece) => check.update(piece));
    check.finish(name);
  }

  /**
   * Verifies the stored blob `name` against `need`, streaming it from disk; `onFrame` (pack
   * export) is told the frame's length, then given each piece of it as it is read. Returns
   * the frame's length.
   */
  async verifyStored(
    name: string,
    need: BlobNeed,
    onFrame?: { start(frameBytes: number): Promise<void>; piece(p: Buffer): Promise<void> },
  ): Promise<number> {
    let fh: FileHandle;
    try {
      fh = await fs.open(this.pathOf(name), 'r');
    } catch (err) {
      throw new StoreError(`blob ${name} is missing from the store: ${err}`);
    }
    try {
      const length = (await fh.stat()).size;
      await onFrame?.start(length);
      const pieces = fileRange(fh, 0, length, `blob ${name}`);
      const source = onFrame === undefined ? pieces : tap(pieces, (p) => onFrame.piece(p));
      await this.verifyStream(name, need, source);
      return length;
    } finally {
      await fh.close();
    }
  }

  /**
   * Stores the frame `source` yields as blob `name` once it is verified against `need`: the
   * pieces go to a temp file as they are decoded, renamed into place at the end (nothing is
   * kept when anything fails). A blob that exists already is verified but not rewritten.
   * Returns whether this call wrote the blob.
   */
  async importFrame(
    name: string,
    need: BlobNeed,
    source: AsyncIterable<Uint8Array>,
  ): Promise<boolean> {
    const dest = this.pathOf(name);
    if ((await this.ownSize(name)) !== undefined) {
      await this.verifyStream(name, need, source);
      return false;
    }
    await fs.mkdir(this.tmpDir, { recursive: true });
    const tmp = tempName(this.tmpDir, name);
    const out = await fs.open(tmp, 'wx');
    try {
      try {
        await this.verifyStream(
          name,
          need,
          tap(source, async (p) => {
            await out.write(p);
          }),
        );
      } finally {
        await out.close();
      }
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await fs.rename(tmp, dest);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    return true;
  }

  async remove(digest: string): Promise<void> {
    await fs.rm(this.pathOf(digest), { force: true });
  }
}

/** The pieces of `source`, each handed to `seen` (and awaited) before it is passed on. */
async function* tap<T>(
  source: AsyncIterable<T>,
  seen: (piece: T) => Promise<void>,
): AsyncGenerator<T> {
  for await (const piece of source) {
    await seen(piece);
    yield piece;
  }
}
