/**
 * The store index (`<root>/index.bin`): every entry with the digests it references, and every
 * blob with its size on disk and its reference count. Binary so that 10k entries and a million
 * blobs load in well under a second; `indexToJson` gives the readable export.
 *
 * Layout (little-endian):
 *
 *   header (72 bytes)
 *     0  magic "CLYDEIX\n"         8  format version u32     12  entry count u32
 *     16 blob count u32           20  reference count u32   24  string-table bytes u32
 *     28 reserved u32 (0)         32  generation f64        40  sha256 of bytes 0-39 and the body
 *   body
 *     blobs   (48 bytes each)  digest (32 raw bytes) | stored size f64 | refs u32 | kind u32
 *                              (0: the blob `<digest>`, 1: a locator `<digest>.loc`, blobs.ts)
 *     entries (96 bytes each)  6 x (offset u32, length u32) into the string table for key,
 *                              package, version, hash, platform, variant | createdAt f64 |
 *                              lastAccessAt f64 | sizeBytes f64 | storedBytes f64 | files f64 |
 *                              first reference u32 | reference count u32
 *     references (u32 each)    blob numbers, entry by entry
 *     strings                  utf-8
 *
 * Nothing read is trusted: the checksum, every count and offset, every field (through the same
 * checks as meta.json) and every reference count (recounted from the entries) must agree, or
 * `decodeIndex` throws and the store rebuilds the index from the entry directories.
 */
import { StoreError } from '../errors.js';
import { createHash } from 'node:crypto';
import { compareBytes } from '../util/bytes.js';
import { checkHash, checkKey, entryDirName } from './meta.js';

export const INDEX_MAGIC = Buffer.from('CLYDEIX\n', 'latin1');
export const INDEX_VERSION = 1;
const HEADER = 72;
const BLOB_REC = 48;
const ENTRY_REC = 96;
const MAX_FIELD = 1024;
/** A blob file's name in blobs/<aa>/: a digest, or a locator (blobs.ts). */
export const BLOB_NAME = /^[0-9a-f]{64}(\.loc)?$/;
const LOCATOR = '.loc';

/** One entry as the index holds it (times in epoch milliseconds). */
export interface IndexEntry {
  readonly key: string;
  readonly package: string;
  readonly version: string;
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  readonly createdAt: number;
  lastAccessAt: number;
  readonly sizeBytes: number;
  readonly storedBytes: number;
  readonly files: number;
  /** Distinct digests of the blobs the entry references. */
  readonly blobs: readonly string[];
}

export interface BlobInfo {
  /** Bytes on disk (the compressed frame). */
  size: number;
  /** How many entries reference the blob; a blob at 0 is deleted. */
  refs: number;
}

/** The index in memory. Blobs are only ever added or freed through `add` and `delete`. */
export class StoreIndex {
  generation = 0;
  readonly entries = new Map<string, IndexEntry>();
  readonly blobs = new Map<string, BlobInfo>();

  /** Adds an entry, counting one reference for each of its blobs (`sizes`: digest -> bytes). */
  add(entry: IndexEntry, sizes: ReadonlyMap<string, number>): void {
    if (this.entries.has(entry.key)) throw new StoreError(`index already holds ${entry.key}`);
    for (const d of entry.blobs) {
      const info = this.blobs.get(d);
      if (info !== undefined) {
        info.refs++;
        continue;
      }
      const size = sizes.get(d);
      if (size === undefined) throw new StoreError(`no size for blob ${d} of ${entry.key}`);
      this.blobs.set(d, { size, refs: 1 });
    }
    this.entries.set(entry.key, entry);
  }

  /** Drops an entry; returns the blobs no entry references any more (removed from the index). */
  delete(key: string): { entry: IndexEntry; freed: Map<string, number> } | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    const freed = new Map<string, number>();
    for (const d of entry.blobs) {
      const info = this.blobs.get(d);
      if (info === undefined) continue;
      info.refs--;
      if (info.refs <= 0) {
        this.blobs.delete(d);
        freed.set(d, info.size);
      }
    }
    return { entry, freed };
  }

  /** Entries by key in byte order. */
  sortedEntries(): IndexEntry[] {
    return [...this.entries.values()].sort((a, b) => compareBytes(a.key, b.key));
  }
}

export function dirOfEntry(e: IndexEntry): string {
  return entryDirName(e);
}

function checkCount(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new StoreError(`index: bad ${what}`);
  return v;
}

function checkTime(v: number, what: string): number {
  if (!Number.isFinite(v) || v < 0) throw new StoreError(`index: bad ${what}`);
  return v;
}

export function encodeIndex(ix: StoreIndex): Buffer {
  const entries = ix.sortedEntries();
  const blobNo = new Map<string, number>();
  let refTotal = 0;
  const strings: Buffer[] = [];
  let stringBytes = 0;
  const fields: [number, number][][] = [];
  for (const e of entries) {
    refTotal += e.blobs.length;
    const f: [number, number][] = [];
    for (const s of [e.key, e.package, e.version, e.hash, e.platform, e.variant]) {
      const b = Buffer.from(s, 'utf8');
      f.push([stringBytes, b.length]);
      strings.push(b);
      stringBytes += b.length;
    }
    fields.push(f);
  }
  const blobsAt = HEADER;
  const entriesAt = blobsAt + ix.blobs.size * BLOB_REC;
  const refsAt = entriesAt + entries.length * ENTRY_REC;
  const stringsAt = refsAt + refTotal * 4;
  const buf = Buffer.alloc(stringsAt + stringBytes);

  let o = blobsAt;
  let n = 0;
  for (const [digest, info] of ix.blobs) {
    const locator = digest.endsWith(LOCATOR);
    if (!BLOB_NAME.test(digest)) throw new StoreError(`index: bad blob name ${digest}`);
    buf.write(digest, o, 32, 'hex');
    buf.writeDoubleLE(info.size, o + 32);
    buf.writeUInt32LE(info.refs, o + 40);
    buf.writeUInt32LE(locator ? 1 : 0, o + 44);
    blobNo.set(digest, n++);
    o += BLOB_REC;
  }
  let r = refsAt;
  entries.forEach((e, i) => {
    const eo = entriesAt + i * ENTRY_REC;
    (fields[i] ?? []).forEach(([off, len], j) => {
      buf.writeUInt32LE(off, eo + j * 8);
      buf.writeUInt32LE(len, eo + j * 8 + 4);
    });
    buf.writeDoubleLE(e.createdAt, eo + 48);
    buf.writeDoubleLE(e.lastAccessAt, eo + 56);
    buf.writeDoubleLE(e.sizeBytes, eo + 64);
    buf.writeDoubleLE(e.storedBytes, eo + 72);
    buf.writeDoubleLE(e.files, eo + 80);
    buf.writeUInt32LE((r - refsAt) / 4, eo + 88);
    buf.writeUInt32LE(e.blobs.length, eo + 92);
    for (const d of e.blobs) {
      const no = blobNo.get(d);
      if (no === undefined) throw new StoreError(`index: ${e.key} references unknown blob ${d}`);
      buf.writeUInt32LE(no, r);
      r += 4;
    }
  });
  Buffer.concat(strings).copy(buf, stringsAt);

  INDEX_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(INDEX_VERSION, 8);
  buf.writeUInt32LE(entries.length, 12);
  buf.writeUInt32LE(ix.blobs.size, 16);
  buf.writeUInt32LE(refTotal, 20);
  buf.writeUInt32LE(stringBytes, 24);
  buf.writeDoubleLE(ix.generation, 32);
  checksum(buf).copy(buf, 40);
  return buf;
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
  const blobsAt = HEADER;
  const entriesAt = blobsAt + blobCount * BLOB_REC;
  const refsAt = entriesAt + entryCount * ENTRY_REC;
  const stringsAt = refsAt + refTotal * 4;
  if (buf.length !== stringsAt + stringBytes) {
    throw new StoreError(
      `index: ${buf.length} bytes where the counts say ${stringsAt + stringBytes}`,
    );
  }
  if (buf.readUInt32LE(28) !== 0) throw new StoreError('index: bad reserved field');
  if (!checksum(buf).equals(buf.subarray(40, 72))) {
    throw new StoreError('index: checksum mismatch');
  }
  const ix = new StoreIndex();
  ix.generation = checkCount(buf.readDoubleLE(32), 'generation');

  const digests = new Array<string>(blobCount);
  const recounted = new Uint32Array(blobCount);
  for (let i = 0, o = blobsAt; i < blobCount; i++, o += BLOB_REC) {
    const kind = buf.readUInt32LE(o + 44);
    if (kind > 1) throw new StoreError('index: bad blob kind');
    const digest = buf.toString('hex', o, o + 32) + (kind === 1 ? LOCATOR : '');
    if (ix.blobs.has(digest)) throw new StoreError(`index: blob ${digest} listed twice`);
    ix.blobs.set(digest, {
      size: checkCount(buf.readDoubleLE(o + 32), 'blob size'),
      refs: buf.readUInt32LE(o + 40),
    });
    digests[i] = digest;
  }
  const str = (eo: number, j: number): string => {
    const off = buf.readUInt32LE(eo + j * 8);
    const len = buf.readUInt32LE(eo + j * 8 + 4);
    if (len > MAX_FIELD * 4 || off + len > stringBytes) throw new StoreError('index: bad string');
    return buf.toString('utf8', stringsAt + off, stringsAt + off + len);
  };
  for (let i = 0; i < entryCount; i++) {
    const eo = entriesAt + i * ENTRY_REC;
    const first = buf.readUInt32LE(eo + 88);
    const count = buf.readUInt32LE(eo + 92);
    if (first + count > refTotal) throw new StoreError('index: references out of range');
    const blobs = new Array<string>(count);
    const seen = new Set<number>();
    for (let j = 0; j < count; j++) {
      const no = buf.readUInt32LE(refsAt + (first + j) * 4);
      const d = digests[no];
      if (d === undefined || seen.has(no)) throw new StoreError('index: bad blob reference');
      seen.add(no);
      recounted[no] = (recounted[no] ?? 0) + 1;
      blobs[j] = d;
    }
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
      blobs,
    };
    entryDirName(entry); // throws on a hash that could not name a directory
    if (ix.entries.has(entry.key)) throw new StoreError(`index: ${entry.key} listed twice`);
    ix.entries.set(entry.key, entry);
  }
  for (let i = 0; i < blobCount; i++) {
    const d = digests[i] as string;
    const refs = (ix.blobs.get(d) as BlobInfo).refs;
    if (refs === 0 || refs !== recounted[i]) {
      throw new StoreError(
        `index: blob ${d} counts ${refs} references, entries make ${recounted[i]}`,
      );
    }
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
  const blobs: Record<string, { size: number; refs: number }> = {};
  for (const d of [...ix.blobs.keys()].sort(compareHex)) {
    const info = ix.blobs.get(d) as BlobInfo;
    blobs[d] = { size: info.size, refs: info.refs };
  }
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
    blobs: [...e.blobs].sort(compareHex),
  }));
  return `${JSON.stringify({ schema: 1, generation: ix.generation, entries, blobs }, null, 1)}\n`;
}

/** Lowercase hex digests: code-unit order is byte order, without compareBytes' allocations. */
export function compareHex(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
