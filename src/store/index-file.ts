/**
 * The store index (`<root>/index.bin`): every entry with the blobs it references, and every blob
 * with its size on disk; reference counts are recounted from the entries on load. Binary and
 * columnar so that 10k entries and a million blobs load in about a tenth of a second: the blob
 * columns are used in place (typed-array views over the file), blobs are small integers (slots)
 * inside the process, and a digest becomes a hex string only when someone asks for its name.
 * `indexToJson` gives the readable export. Access times newer than the file are in the access
 * journal (access-journal.ts).
 *
 * Layout (little-endian; every section starts 8-byte aligned):
 *
 *   header (72 bytes)
 *     0  magic "CLYDEIX\n"         8  format version u32 (3)  12  entry count u32
 *     16 blob count u32           20  reference count u32    24  string-table bytes u32
 *     28 reserved u32 (0)         32  generation f64         40  sha256 of bytes 0-39 and the body
 *   body
 *     digests     32 raw bytes per blob
 *     sizes       f64 per blob: bytes on disk
 *     references  u32 per reference: blob numbers, entry by entry (in entry order, contiguous),
 *                 zero-padded to a multiple of 8
 *     entries     96 bytes each, by key in byte order: 6 x (offset u32, length u32) into the
 *                 string table for key, package, version, hash, platform, variant | createdAt f64
 *                 | lastAccessAt f64 | sizeBytes f64 | storedBytes f64 | files f64 | first
 *                 reference u32 | reference count u32
 *     strings     utf-8
 *
 * Nothing read is trusted: the checksum, every count and offset, every field (through the same
 * checks as meta.json), every blob (named once, referenced at least once, at most once per
 * entry) must agree, or `decodeIndex` throws and the store rebuilds the index from the entry
 * directories. The checks are typed-array loops, not per-record objects.
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { StoreError } from '../errors.js';
import { BLOB_NAME } from './blob-layout.js';
import { BlobTable, type BlobInfo } from './blob-table.js';
import { checkHash, checkKey, entryDirName } from './meta.js';

export const INDEX_MAGIC = Buffer.from('CLYDEIX\n', 'latin1');
export const INDEX_VERSION = 3;
const HEADER = 72;
const DIGEST = 32;
const ENTRY_REC = 96;
const MAX_FIELD = 1024;
/** Typed arrays use the host's byte order; the file is little-endian (swapped on other hosts). */
const LITTLE_ENDIAN = os.endianness() === 'LE';
// Used in per-blob loops: module bindings, not global lookups (slow in vm contexts, e.g. jest).
const { isSafeInteger } = Number;

/** The fields of an entry (times in epoch milliseconds). */
export interface EntryFields {
  readonly key: string;
  readonly package: string;
  readonly version: string;
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  readonly createdAt: number;
  readonly lastAccessAt: number;
  readonly sizeBytes: number;
  readonly storedBytes: number;
  readonly files: number;
}

/** An entry to add: its distinct blob names. */
export interface NewEntry extends EntryFields {
  readonly blobs: readonly string[];
}

/** One entry as the index holds it. */
export interface IndexEntry extends EntryFields {
  lastAccessAt: number;
  /** The entry's blobs, as slots of the index's BlobTable (names through `blobNames`). */
  readonly slots: Uint32Array;
}

/** The index in memory. Blobs are only ever added or freed through `add` and `delete`. */
export class StoreIndex {
  generation = 0;
  readonly entries = new Map<string, IndexEntry>();
  private sorted: IndexEntry[] | undefined;

  constructor(readonly blobs: BlobTable = new BlobTable()) {}

  /** Adds an entry, counting one reference for each of its blobs (`sizes`: name -> bytes). */
  add(entry: NewEntry, sizes: ReadonlyMap<string, number>): IndexEntry {
    if (this.entries.has(entry.key)) throw new StoreError(`index already holds ${entry.key}`);
    // Check everything before changing anything.
    const known = entry.blobs.map((d) => {
      const s = this.blobs.find(d);
      if (s >= 0 && this.blobs.isLive(s)) return s;
      if (!BLOB_NAME.test(d)) throw new StoreError(`index: bad blob name ${d}`);
      if (sizes.get(d) === undefined) {
        throw new StoreError(`no size for blob ${d} of ${entry.key}`);
      }
      return -1;
    });
    if (new Set(entry.blobs).size !== entry.blobs.length) {
      throw new StoreError(`index: ${entry.key} lists a blob twice`);
    }
    const slots = new Uint32Array(entry.blobs.length);
    entry.blobs.forEach((d, i) => {
      const s = known[i] as number;
      slots[i] = s >= 0 ? s : this.blobs.intern(d, sizes.get(d) as number);
      this.blobs.retain(slots[i] as number);
    });
    const rec: IndexEntry = {
      key: entry.key,
      package: entry.package,
      version: entry.version,
      hash: entry.hash,
      platform: entry.platform,
      variant: entry.variant,
      createdAt: entry.createdAt,
      lastAccessAt: entry.lastAccessAt,
      sizeBytes: entry.sizeBytes,
      storedBytes: entry.storedBytes,
      files: entry.files,
      slots,
    };
    this.entries.set(rec.key, rec);
    this.sorted = undefined;
    return rec;
  }

  /** Drops an entry; returns the blobs no entry references any more (name -> bytes). */
  delete(key: string): { entry: IndexEntry; freed: Map<string, number> } | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.sorted = undefined;
    const freed = new Map<string, number>();
    for (const s of entry.slots) {
      if (this.blobs.release(s)) freed.set(this.blobs.name(s), this.blobs.sizeOf(s));
    }
    return { entry, freed };
  }

  /** The names of an entry's blobs. */
  blobNames(e: IndexEntry): string[] {
    return Array.from(e.slots, (s) => this.blobs.name(s));
  }

  /** Entries by key in byte order (kept until the next add or delete: do not modify). */
  sortedEntries(): readonly IndexEntry[] {
    if (this.sorted === undefined) {
      const keyed = [...this.entries.values()].map((e) => ({ e, k: Buffer.from(e.key, 'utf8') }));
      keyed.sort((a, b) => Buffer.compare(a.k, b.k));
      this.sorted = keyed.map((x) => x.e);
    }
    return this.sorted;
  }
}

function checkCount(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new StoreError(`index: bad ${what}`);
  return v;
}

function checkTime(v: number, what: string): number {
  if (!Number.isFinite(v) || v < 0) throw new StoreError(`index: bad ${what}`);
  return v;
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

interface Layout {
  readonly sizesAt: number;
  readonly refsAt: number;
  readonly entriesAt: number;
  readonly stringsAt: number;
  readonly total: number;
}

function layout(blobs: number, refs: number, entries: number, stringBytes: number): Layout {
  const sizesAt = HEADER + blobs * DIGEST;
  const refsAt = sizesAt + blobs * 8;
  const entriesAt = pad8(refsAt + refs * 4);
  const stringsAt = entriesAt + entries * ENTRY_REC;
  return { sizesAt, refsAt, entriesAt, stringsAt, total: stringsAt + stringBytes };
}

/** Live slots renumbered in slot order; the identity (undefined) when none is dead. */
function compaction(refs: Uint32Array): { map: Int32Array | undefined; live: number } {
  let dead = 0;
  for (let s = 0; s < refs.length; s++) if (refs[s] === 0) dead++;
  if (dead === 0) return { map: undefined, live: refs.length };
  const map = new Int32Array(refs.length);
  let next = 0;
  for (let s = 0; s < refs.length; s++) map[s] = refs[s] === 0 ? -1 : next++;
  return { map, live: next };
}

export function encodeIndex(ix: StoreIndex): Buffer {
  const entries = ix.sortedEntries();
  const cols = ix.blobs.columns();
  const { map, live } = compaction(cols.refs);
  let refTotal = 0;
  let stringBytes = 0;
  const fieldsOf = (e: IndexEntry): string[] => [
    e.key,
    e.package,
    e.version,
    e.hash,
    e.platform,
    e.variant,
  ];
  for (const e of entries) {
    refTotal += e.slots.length;
    for (const s of fieldsOf(e)) stringBytes += Buffer.byteLength(s, 'utf8');
  }
  const at = layout(live, refTotal, entries.length, stringBytes);
  const buf = Buffer.alloc(at.total);

  // blob columns: one copy each when nothing is dead, else runs of live slots
  const sizes = new Float64Array(buf.buffer, buf.byteOffset + at.sizesAt, live);
  if (map === undefined) {
    cols.digests.copy(buf, HEADER);
    sizes.set(cols.sizes);
  } else {
    for (let s = 0; s < cols.refs.length;) {
      if (map[s] === -1) {
        s++;
        continue;
      }
      let end = s;
      while (end < cols.refs.length && map[end] !== -1) end++;
      const to = map[s] as number;
      cols.digests.copy(buf, HEADER + to * DIGEST, s * DIGEST, end * DIGEST);
      sizes.set(cols.sizes.subarray(s, end), to);
      s = end;
    }
  }

  const refs = new Uint32Array(buf.buffer, buf.byteOffset + at.refsAt, refTotal);
  let r = 0;
  let str = 0;
  entries.forEach((e, i) => {
    const eo = at.entriesAt + i * ENTRY_REC;
    fieldsOf(e).forEach((s, j) => {
      const len = buf.write(s, at.stringsAt + str, 'utf8');
      buf.writeUInt32LE(str, eo + j * 8);
      buf.writeUInt32LE(len, eo + j * 8 + 4);
      str += len;
    });
    buf.writeDoubleLE(e.createdAt, eo + 48);
    buf.writeDoubleLE(e.lastAccessAt, eo + 56);
    buf.writeDoubleLE(e.sizeBytes, eo + 64);
    buf.writeDoubleLE(e.storedBytes, eo + 72);
    buf.writeDoubleLE(e.files, eo + 80);
    buf.writeUInt32LE(r, eo + 88);
    buf.writeUInt32LE(e.slots.length, eo + 92);
    if (map === undefined) {
      refs.set(e.slots, r);
      r += e.slots.length;
    } else {
      for (const s of e.slots) refs[r++] = map[s] as number;
    }
  });
  if (!LITTLE_ENDIAN) {
    buf.subarray(at.sizesAt, at.refsAt).swap64();
    buf.subarray(at.refsAt, at.refsAt + refTotal * 4).swap32();
  }

  INDEX_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(INDEX_VERSION, 8);
  buf.writeUInt32LE(entries.length, 12);
  buf.writeUInt32LE(live, 16);
  buf.writeUInt32LE(refTotal, 20);
  buf.writeUInt32LE(stringBytes, 24);
  buf.writeDoubleLE(ix.generation, 32);
  checksum(buf).copy(buf, 40);
  return buf;
}

/** A typed-array view of a section, copied when unaligned (or swapped on a big-endian host). */
function column<T extends Float64Array | Uint32Array>(
  make: { new (b: ArrayBufferLike, o: number, n: number): T; new (n: number): T },
  bytes: number,
  buf: Buffer,
  at: number,
  n: number,
): T {
  const off = buf.byteOffset + at;
  if (LITTLE_ENDIAN && off % bytes === 0) return new make(buf.buffer, off, n);
  const out = new make(n);
  const raw = Buffer.from(out.buffer, 0, n * bytes);
  buf.copy(raw, 0, at, at + n * bytes);
  if (!LITTLE_ENDIAN) {
    if (bytes === 8) raw.swap64();
    else raw.swap32();
  }
  return out;
}

/** Parses and checks an index file; throws StoreError on anything inconsistent. */
export function decodeIndex(buf: Buffer): StoreIndex {
  if (buf.length < HEADER) throw new StoreError('index: truncated header');
  if (!buf.subarray(0, 8).equals(INDEX_MAGIC)) throw new StoreError('index: bad magic');
  const version = buf.readUInt32LE(8);
  if (version !== INDEX_VERSION) throw new StoreError(`index: unknown version ${version}`);
  const entryCount = buf.readUInt32LE(12);
  const blobCount = buf.readUInt32LE(16);
  const refTotal = buf.readUInt32LE(20);
  const stringBytes = buf.readUInt32LE(24);
  const at = layout(blobCount, refTotal, entryCount, stringBytes);
  if (buf.length !== at.total) {
    throw new StoreError(`index: ${buf.length} bytes where the counts say ${at.total}`);
  }
  if (buf.readUInt32LE(28) !== 0) throw new StoreError('index: bad reserved field');
  if (!checksum(buf).equals(buf.subarray(40, HEADER))) {
    throw new StoreError('index: checksum mismatch');
  }
  const generation = checkCount(buf.readDoubleLE(32), 'generation');

  const sizes = column(Float64Array, 8, buf, at.sizesAt, blobCount);
  for (let s = 0; s < blobCount; s++) {
    const v = sizes[s] as number;
    if (!isSafeInteger(v) || v < 0) throw new StoreError('index: bad blob size');
  }
  for (let p = at.refsAt + refTotal * 4; p < at.entriesAt; p++) {
    if (buf[p] !== 0) throw new StoreError('index: bad padding');
  }
  const refs = column(Uint32Array, 4, buf, at.refsAt, refTotal);

  // Reference counts, recounted; an entry names a blob at most once (`seenBy` the last entry).
  const counts = new Uint32Array(blobCount);
  const seenBy = new Int32Array(blobCount).fill(-1);
  const slotsOf: Uint32Array[] = new Array<Uint32Array>(entryCount);
  let next = 0;
  for (let i = 0; i < entryCount; i++) {
    const eo = at.entriesAt + i * ENTRY_REC;
    const first = buf.readUInt32LE(eo + 88);
    const count = buf.readUInt32LE(eo + 92);
    if (first !== next || first + count > refTotal) {
      throw new StoreError('index: references out of range');
    }
    next = first + count;
    for (let p = first; p < next; p++) {
      const no = refs[p] as number;
      if (no >= blobCount || seenBy[no] === i) throw new StoreError('index: bad blob reference');
      seenBy[no] = i;
      counts[no] = (counts[no] as number) + 1;
    }
    slotsOf[i] = refs.subarray(first, next);
  }
  if (next !== refTotal) throw new StoreError('index: references out of range');
  for (let s = 0; s < blobCount; s++) {
    if (counts[s] === 0) throw new StoreError('index: a blob no entry references');
  }
  const table = BlobTable.fromColumns(
    buf.subarray(HEADER, HEADER + blobCount * DIGEST),
    sizes,
    counts,
  );

  const ix = new StoreIndex(table);
  ix.generation = generation;
  const str = (eo: number, j: number): string => {
    const off = buf.readUInt32LE(eo + j * 8);
    const len = buf.readUInt32LE(eo + j * 8 + 4);
    if (len > MAX_FIELD * 4 || off + len > stringBytes) throw new StoreError('index: bad string');
    return buf.toString('utf8', at.stringsAt + off, at.stringsAt + off + len);
  };
  let previous: Buffer | undefined;
  for (let i = 0; i < entryCount; i++) {
    const eo = at.entriesAt + i * ENTRY_REC;
    const entry: IndexEntry = {
      key: checkKey(str(eo, 0)),
      package: fieldOf(str(eo, 1), 'package'),
      version: fieldOf(str(eo, 2), 'version'),
      hash: checkHash(str(eo, 3)),
      platform: fieldOf(str(eo, 4), 'platform'),
      variant: fieldOf(str(eo, 5), 'variant'),
      createdAt: checkTime(buf.readDoubleLE(eo + 48), 'createdAt'),
      lastAccessAt: checkTime(buf.readDoubleLE(eo + 56), 'lastAccessAt'),
      sizeBytes: checkCount(buf.readDoubleLE(eo + 64), 'sizeBytes'),
      storedBytes: checkCount(buf.readDoubleLE(eo + 72), 'storedBytes'),
      files: checkCount(buf.readDoubleLE(eo + 80), 'files'),
      slots: slotsOf[i] as Uint32Array,
    };
    entryDirName(entry); // throws on a hash that could not name a directory
    // Keys strictly increasing in byte order: sorted, and none listed twice.
    const keyAt = at.stringsAt + buf.readUInt32LE(eo);
    const key = buf.subarray(keyAt, keyAt + buf.readUInt32LE(eo + 4));
    if (previous !== undefined && Buffer.compare(previous, key) >= 0) {
      throw new StoreError(`index: ${entry.key} out of order or listed twice`);
    }
    previous = key;
    ix.entries.set(entry.key, entry);
  }
  return ix;
}

function checksum(buf: Buffer): Buffer {
  return createHash('sha256').update(buf.subarray(0, 40)).update(buf.subarray(HEADER)).digest();
}

function fieldOf(s: string, what: string): string {
  if (s.length > MAX_FIELD) throw new StoreError(`index: bad ${what}`);
  return s;
}

/** The readable export: entries by key (ISO times), blobs by digest with size and refs. */
export function indexToJson(ix: StoreIndex): string {
  const live: [string, BlobInfo][] = [...ix.blobs];
  live.sort((a, b) => compareHex(a[0], b[0]));
  const blobs: Record<string, BlobInfo> = {};
  for (const [d, info] of live) blobs[d] = { size: info.size, refs: info.refs };
  const entries = ix.sortedEntries().map((e) => ({
    key: e.key,
    dir: entryDirName(e),
    package: e.package,
    version: e.version,
    hash: e.hash,
    platform: e.platform,
    variant: e.variant,
    createdAt: new Date(e.createdAt).toISOString(),
    lastAccessAt: new Date(e.lastAccessAt).toISOString(),
    sizeBytes: e.sizeBytes,
    storedBytes: e.storedBytes,
    files: e.files,
    blobs: ix.blobNames(e).sort(compareHex),
  }));
  return `${JSON.stringify({ schema: 1, generation: ix.generation, entries, blobs }, null, 1)}\n`;
}

/** Lowercase hex digests: code-unit order is byte order, without compareBytes' allocations. */
export function compareHex(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
