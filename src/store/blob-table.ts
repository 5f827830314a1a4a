/**
 * The index's blobs in memory (index-file.ts): every blob in columns indexed by slot (digest,
 * size on disk, reference count), found by name through an open-addressing hash table over the
 * raw digests, so a million blobs cost a few typed arrays and no string or object each.
 */
import { StoreError } from '../errors.js';
import { BLOB_NAME } from './blob-layout.js';

const DIGEST = 32;
// Used in per-blob loops: module bindings, not global lookups (slow in vm contexts, e.g. jest).
const { imul } = Math;
const { isNaN } = Number;

export interface BlobInfo {
  /** Bytes on disk (the compressed frame). */
  readonly size: number;
  /** How many entries reference the blob. */
  readonly refs: number;
}

const scratch = Buffer.allocUnsafeSlow(DIGEST);
const scratchWords = new Uint32Array(scratch.buffer, scratch.byteOffset, DIGEST / 4);

/**
 * Every blob the index knows, in columns indexed by slot. A slot's name never changes; a blob
 * whose last reference goes stays in its slot (dead, refs 0) until the next encode compacts the
 * file, and comes back to life there if it is added again. Lookups by name go through an
 * open-addressing hash table over the raw digests.
 */
export class BlobTable {
  private used = 0;
  private alive = 0;
  private digests: Buffer;
  private words: Uint32Array;
  private sizes: Float64Array;
  private refs: Uint32Array;
  /** slot + 1 per bucket, 0 when empty; at most half full. */
  private table = new Int32Array(0);
  /** Hex names by slot, made on demand (`names()` fills them all at once). */
  private readonly nameCache: (string | undefined)[] = [];

  constructor(capacity = 256) {
    this.digests = Buffer.allocUnsafeSlow(capacity * DIGEST);
    this.words = new Uint32Array(this.digests.buffer, 0, capacity * 8);
    this.sizes = new Float64Array(capacity);
    this.refs = new Uint32Array(capacity);
    this.rehash(capacity);
  }

  /** A table over decoded columns (taken over, not copied); throws on a blob named twice. */
  static fromColumns(digests: Buffer, sizes: Float64Array, refs: Uint32Array): BlobTable {
    const t = new BlobTable(0);
    const n = sizes.length;
    t.digests = digests.byteOffset % 4 === 0 ? digests : Buffer.from(digests);
    t.words = new Uint32Array(t.digests.buffer, t.digests.byteOffset, n * 8);
    t.sizes = sizes;
    t.refs = refs;
    t.used = n;
    t.alive = n;
    if (!t.rehash(n)) throw new StoreError('index: a blob is listed twice');
    return t;
  }

  /** Live blobs (referenced by at least one entry). */
  get size(): number {
    return this.alive;
  }

  /** Slots in use, live or dead: every slot is below this. */
  get slotCount(): number {
    return this.used;
  }

  /** The slot of a blob name, live or dead; -1 when the table never held it. */
  find(name: string): number {
    if (!parseName(name)) return -1;
    const mask = this.table.length - 1;
    let b = hashWords(scratchWords, 0) & mask;
    for (;;) {
      const s = (this.table[b] as number) - 1;
      if (s < 0) return -1;
      if (this.sameDigest(s)) return s;
      b = (b + 1) & mask;
    }
  }

  /** Size and reference count of a live blob. */
  get(name: string): BlobInfo | undefined {
    const s = this.find(name);
    return s >= 0 && this.isLive(s) ? { size: this.sizeOf(s), refs: this.refsOf(s) } : undefined;
  }

  has(name: string): boolean {
    const s = this.find(name);
    return s >= 0 && this.isLive(s);
  }

  isLive(slot: number): boolean {
    return (this.refs[slot] as number) > 0;
  }

  sizeOf(slot: number): number {
    return this.sizes[slot] as number;
  }

  refsOf(slot: number): number {
    return this.refs[slot] as number;
  }

  name(slot: number): string {
    let n = this.nameCache[slot];
    if (n === undefined) {
      n = this.digests.toString('hex', slot * DIGEST, (slot + 1) * DIGEST);
      this.nameCache[slot] = n;
    }
    return n;
  }

  /** Every slot's name (index = slot): one hex conversion per 64k blobs, then substrings. */
  names(): readonly string[] {
    const cache = this.nameCache;
    const CHUNK = 65_536;
    for (let from = 0; from < this.used; from += CHUNK) {
      const to = Math.min(this.used, from + CHUNK);
      let complete = true;
      for (let s = from; s < to && complete; s++) complete = cache[s] !== undefined;
      if (complete) continue;
      const hex = this.digests.toString('hex', from * DIGEST, to * DIGEST);
      for (let s = from; s < to; s++) {
        if (cache[s] !== undefined) continue;
        cache[s] = hex.slice((s - from) * 64, (s - from + 1) * 64);
      }
    }
    return cache as string[];
  }

  /** Live blobs as [name, info], in slot order. */
  *[Symbol.iterator](): IterableIterator<[string, BlobInfo]> {
    for (let s = 0; s < this.used; s++) {
      if (this.isLive(s)) yield [this.name(s), { size: this.sizeOf(s), refs: this.refsOf(s) }];
    }
  }

  /**
   * The slot for `name`, added (dead, with `size`) when the table does not hold it; a dead slot
   * takes the new size. Does not count a reference.
   */
  intern(name: string, size: number): number {
    const found = this.find(name);
    if (found >= 0) {
      if (!this.isLive(found)) this.sizes[found] = size;
      return found;
    }
    if (!parseName(name)) throw new StoreError(`index: bad blob name ${name}`);
    if (this.used === this.sizes.length) this.grow();
    const s = this.used++;
    scratch.copy(this.digests, s * DIGEST);
    this.sizes[s] = size;
    this.refs[s] = 0;
    this.nameCache[s] = name;
    if (this.used * 2 > this.table.length) this.rehash(this.used);
    else this.insert(s);
    return s;
  }

  /** Counts one more reference. */
  retain(slot: number): void {
    if (this.refs[slot] === 0) this.alive++;
    this.refs[slot] = (this.refs[slot] as number) + 1;
  }

  /** Counts one reference less; true when that was the last one. */
  release(slot: number): boolean {
    const left = (this.refs[slot] as number) - 1;
    if (left < 0) return false;
    this.refs[slot] = left;
    if (left === 0) this.alive--;
    return left === 0;
  }

  /** Raw columns for the encoder. */
  columns(): { digests: Buffer; sizes: Float64Array; refs: Uint32Array } {
    const n = this.used;
    return {
      digests: this.digests.subarray(0, n * DIGEST),
      sizes: this.sizes.subarray(0, n),
      refs: this.refs.subarray(0, n),
    };
  }

  /** A frozen digest -> size view of the live blobs (what a StoreSnapshot carries). */
  sizeView(): ReadonlyMap<string, number> {
    const sizes = this.sizes.slice(0, this.used);
    for (let s = 0; s < this.used; s++) if (!this.isLive(s)) sizes[s] = NaN;
    return new BlobSizes(this, this.names(), sizes, this.alive);
  }

  private sameDigest(s: number): boolean {
    const w = this.words;
    const o = s * 8;
    for (let i = 0; i < 8; i++) if (w[o + i] !== scratchWords[i]) return false;
    return true;
  }

  private grow(): void {
    const cap = Math.max(256, Math.ceil(this.sizes.length * 1.5));
    const digests = Buffer.allocUnsafeSlow(cap * DIGEST);
    this.digests.copy(digests, 0, 0, this.used * DIGEST);
    this.digests = digests;
    this.words = new Uint32Array(digests.buffer, 0, cap * 8);
    const sizes = new Float64Array(cap);
    sizes.set(this.sizes.subarray(0, this.used));
    this.sizes = sizes;
    const refs = new Uint32Array(cap);
    refs.set(this.refs.subarray(0, this.used));
    this.refs = refs;
  }

  /** A table for at least `n` slots, every used slot inserted; false on a duplicate. */
  private rehash(n: number): boolean {
    let buckets = 16;
    while (buckets < n * 2) buckets *= 2;
    this.table = new Int32Array(buckets);
    for (let s = 0; s < this.used; s++) if (!this.insert(s)) return false;
    return true;
  }

  private insert(s: number): boolean {
    const w = this.words;
    const o = s * 8;
    const mask = this.table.length - 1;
    let b = hashWords(w, o) & mask;
    for (;;) {
      const t = (this.table[b] as number) - 1;
      if (t < 0) break;
      let same = true;
      for (let i = 0; i < 8 && same; i++) same = w[t * 8 + i] === w[o + i];
      if (same) return false;
      b = (b + 1) & mask;
    }
    this.table[b] = s + 1;
    return true;
  }
}

/** Whether `name` is a blob name; if so, its digest is now in `scratch`. */
function parseName(name: string): boolean {
  if (!BLOB_NAME.test(name)) return false;
  scratch.write(name, 0, DIGEST, 'hex');
  return true;
}

function hashWords(w: Uint32Array, o: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 8; i++) h = imul(h ^ (w[o + i] as number), 0x9e3779b1);
  h ^= h >>> 15;
  h = imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** The snapshot's digest -> size map: names and sizes copied, lookups through the table. */
export class BlobSizes implements ReadonlyMap<string, number> {
  constructor(
    private readonly table: BlobTable,
    private readonly slotNames: readonly string[],
    /** NaN for a blob that was dead when the view was made. */
    private readonly sizes: Float64Array,
    readonly size: number,
  ) {}

  get(name: string): number | undefined {
    const s = this.table.find(name);
    if (s < 0 || s >= this.sizes.length) return undefined;
    const size = this.sizes[s] as number;
    return isNaN(size) ? undefined : size;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  *entries(): MapIterator<[string, number]> {
    for (let s = 0; s < this.sizes.length; s++) {
      const size = this.sizes[s] as number;
      if (!isNaN(size)) yield [this.slotNames[s] as string, size];
    }
  }

  *keys(): MapIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): MapIterator<number> {
    for (const [, size] of this.entries()) yield size;
  }

  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }

  forEach(fn: (value: number, key: string, map: ReadonlyMap<string, number>) => void): void {
    for (const [name, size] of this.entries()) fn(size, name, this);
  }
}
