/**
 * The pack: one file per entry for the runner-cache tier (the bucket tier keeps its blobs apart,
 * and puts them back into a pack to restore an entry).
 *
 *   magic "CLYDEPK\n" (8 bytes) | format version u32 BE (3)
 *   meta length u32 BE | meta JSON (utf-8, EntryMeta)
 *   table length u32 BE | the entry's table (table.ts: the same bytes as its local artifact)
 *   per blob: sha256 (32 raw bytes) | compressed length u64 BE | the stored zstd frame
 *   end: 32 zero bytes | length 0
 *
 * Blobs travel as they are stored: a standalone file's blob, and the group blobs of grouped
 * small files, whose places the table's rows give; nothing is recompressed. Earlier formats (1:
 * one blob per file; 2: a JSON manifest and locator) are refused with a message saying so: the
 * entry is a miss and is saved again.
 *
 * Reading a pack (`scanPack`) checks its whole structure before anything of it is used, and
 * trusts nothing: the table goes through the same decoder as a local artifact (`decodeTable`,
 * `tableManifest`, and so `parseManifest`), and every blob record is checked against what the
 * entry needs. The frames themselves are verified where they are used: pack-room.ts restores
 * the files straight from them, the workers hashing every file's content (and a group's whole
 * content against its name) as they write it, before the store adopts a frame.
 *
 * Every size is a budget checked before anything is allocated or written: the meta's and the
 * table's lengths against a bound and what remains of the pack, a frame's length against what
 * remains of the pack and what its content size allows. Frames are copied, decompressed and
 * hashed in bounded pieces, so neither a declared size of gigabytes (a zstd bomb) nor an honest
 * file above 2 GiB ever lands in one buffer.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { sortBytes } from '../util/bytes.js';
import { rename, tempName } from '../util/fsx.js';
import type { BlobNeed, BlobStore, Location, Member } from './blobs.js';
import { manifestFiles, type Manifest } from './manifest.js';
import { manifestOfTable } from './table-manifest.js';
import type { EntryMeta } from './types.js';

export const PACK_MAGIC = Buffer.from('CLYDEPK\n', 'latin1');
export const PACK_VERSION = 3;
/** A meta or table this large would describe far more files than any real entry. */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** Saves write groups of about 1 MiB; a pack's group beyond this is refused unread. */
export const MAX_GROUP_BYTES = 64 * 1024 * 1024;
const DIGEST_BYTES = 32;
const END = Buffer.alloc(DIGEST_BYTES);

/** The most compressed bytes a frame of `size` content bytes can honestly take. */
function maxFrameBytes(size: number): number {
  return size + Math.floor(size / 128) + 4096;
}

/** What a pack says of its entry before its blobs: the meta (unchecked) and the table. */
export interface PackHeader {
  readonly meta: unknown;
  /** The entry's table, as it came. */
  readonly table: Buffer;
}

/** One blob of an entry: its content size and, for a group, the grouped files in it. */
interface NeededBlob extends BlobNeed {
  readonly members: Member[];
}

/**
 * Every blob the entry needs, by name: standalone files and groups (from `locs`). Throws
 * StoreError when the table's rows disagree about a file or a group.
 */
function neededBlobs(m: Manifest, locs: ReadonlyMap<string, Location>): Map<string, NeededBlob> {
  const out = new Map<string, NeededBlob>();
  const files = new Set<string>();
  for (const f of manifestFiles(m)) {
    if (files.has(f.digest)) continue;
    files.add(f.digest);
    const loc = locs.get(f.digest);
    const name = loc?.group ?? f.digest;
    const size = loc?.groupSize ?? f.size;
    if (loc !== undefined && loc.size !== f.size) {
      throw new StoreError(`the table places ${f.digest} with ${loc.size} bytes, not ${f.size}`);
    }
    let b = out.get(name);
    if (b === undefined) {
      b = { size, members: [] };
      out.set(name, b);
    } else if (b.size !== size) {
      throw new StoreError(`blob ${name} is needed with two sizes`);
    }
    if (loc !== undefined) b.members.push({ digest: f.digest, offset: loc.offset, size: loc.size });
  }
  return out;
}

/** What exporting a pack takes: `verify` each blob (default), leave out those in `omit`. */
export interface PackOptions {
  readonly verify?: boolean;
  readonly omit?: ReadonlySet<string>;
}

/** A pack to be read: its size, known before a byte of it is, and its pieces (each call anew). */
export interface PackStream {
  readonly bytes: number;
  pieces(): AsyncGenerator<Buffer>;
}

/**
 * The pack of an entry, to be read piece by piece from the store (nothing of it is held whole):
 * `table` is the entry's artifact, `manifest` what it decodes to (its grouped files attached to
 * `blobs`). Every blob is verified before it is copied unless `verify` is false (a store made
 * for this step, whose blobs were all hashed as they were written); the blobs in `omit` are left
 * out (a layer: its base carries them). When `pieces` throws, what it yielded is not a pack:
 * the consumer drops it (a corrupt blob must never be uploaded, as the remote copy could not be
 * replaced).
 */
export async function packStream(
  blobs: BlobStore,
  meta: EntryMeta,
  table: Buffer,
  manifest: Manifest,
  opts: PackOptions = {},
): Promise<PackStream> {
  const needed = neededBlobs(manifest, blobs.locationsOf(manifest));
  const verify = opts.verify ?? true;
  return streamOf(blobs, meta, table, needed.keys(), opts.omit, async (name) => {
    if (verify) await blobs.verifyStored(name, needed.get(name) as NeededBlob);
  });
}

/**
 * `packStream` of an entry this process has just saved, from the blobs its save says it
 * references (SaveResult.made): its table is not read back and decoded again, and its blobs are
 * not verified (a store made for one step, whose blobs were all hashed as they were written).
 */
export function savedPackStream(
  blobs: BlobStore,
  meta: EntryMeta,
  table: Buffer,
  referenced: Iterable<string>,
  omit?: ReadonlySet<string>,
): Promise<PackStream> {
  return streamOf(blobs, meta, table, referenced, omit, async () => undefined);
}

async function streamOf(
  blobs: BlobStore,
  meta: EntryMeta,
  table: Buffer,
  referenced: Iterable<string>,
  omit: ReadonlySet<string> | undefined,
  check: (name: string) => Promise<void>,
): Promise<PackStream> {
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  if (metaBytes.length > MAX_HEADER_BYTES || table.length > MAX_HEADER_BYTES) {
    throw new StoreError('entry too large to pack');
  }
  const names = sortBytes(referenced).filter((n) => omit?.has(n) !== true);
  const frames: number[] = [];
  for (const name of names) {
    const size = await blobs.ownSize(name);
    if (size === undefined) throw new StoreError(`blob ${name} is missing from the store`);
    frames.push(size);
  }
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const head = Buffer.concat([PACK_MAGIC, u32(PACK_VERSION), u32(metaBytes.length), metaBytes]);
  const bytes =
    head.length +
    4 +
    table.length +
    frames.reduce((n, f) => n + DIGEST_BYTES + 8 + f, 0) +
    DIGEST_BYTES +
    8;
  async function* pieces(): AsyncGenerator<Buffer> {
    yield head;
    yield Buffer.concat([u32(table.length), table]);
    for (const [i, name] of names.entries()) {
      await check(name);
      const { length, pieces: frame } = await blobs.storedFrame(name, frames[i]);
      const rec = Buffer.alloc(DIGEST_BYTES + 8);
      Buffer.from(name, 'hex').copy(rec, 0);
      rec.writeBigUInt64BE(BigInt(length), DIGEST_BYTES);
      yield rec;
      yield* frame;
    }
    yield Buffer.concat([END, Buffer.alloc(8)]);
  }
  return { bytes, pieces };
}

/** Writes a pack to `destFile` (temp file + rename); returns its size. */
export async function writePack(pack: PackStream, destFile: string): Promise<{ bytes: number }> {
  const tmp = tempName(path.dirname(destFile), `${path.basename(destFile)}.part`);
  const out = await fs.open(tmp, 'wx');
  let bytes = 0;
  try {
    for await (const p of pack.pieces()) {
      await out.write(p);
      bytes += p.length;
    }
    // (No fsync: a pack is read back at once for its upload and removed after; a crash loses
    // nothing a later save would not make again.)
    await out.close();
    await rename(tmp, destFile);
    return { bytes };
  } catch (err) {
    await out.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** What the formats before this one carried, for the message that refuses them. */
const OLDER_PACKS: Record<number, string> = {
  1: 'before grouped files',
  2: 'with a JSON manifest and locator',
};

/** A length-prefixed section (u32 BE), its length checked before anything is allocated. */
async function readSection(r: PackReader, what: string): Promise<Buffer> {
  const len = (await r.read(4, `${what} length`)).readUInt32BE(0);
  if (len > MAX_HEADER_BYTES) throw new StoreError(`pack ${what} too large (${len} bytes)`);
  if (len > r.remaining) {
    throw new StoreError(`pack ${what} claims ${len} bytes; only ${r.remaining} follow`);
  }
  return r.read(len, what);
}

class PackReader {
  pos = 0;
  constructor(
    readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** Bytes of the pack after the current position. */
  get remaining(): number {
    return this.size - this.pos;
  }

  /** Exactly `n` bytes, or StoreError when the pack ends first. */
  async read(n: number, what: string): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, this.pos);
      if (bytesRead === 0) throw new StoreError(`pack is truncated (in ${what})`);
      got += bytesRead;
      this.pos += bytesRead;
    }
    return buf;
  }

  async atEnd(): Promise<boolean> {
    const { bytesRead } = await this.fh.read(Buffer.alloc(1), 0, 1, this.pos);
    return bytesRead === 0;
  }
}

/** A pack's structure, checked, with every blob's frame found and nothing decompressed yet. */
export interface PackIndex {
  readonly manifest: Manifest;
  readonly locations: Map<string, Location>;
  /** Each blob the entry needs: its frame's place in the pack. */
  readonly frames: Map<string, { offset: number; length: number }>;
  /** Compressed bytes of the blobs the pack carries. */
  readonly storedBytes: number;
}

/**
 * Reads a pack's header and the place of every frame, checking its whole structure: the
 * header's sizes, the table (decodeTable, tableManifest: so parseManifest), every blob record
 * against what the entry needs (no stranger, no repeat, a length its content could honestly
 * take and the pack still holds), the end marker, and that no needed blob is missing. Reads
 * only the records' 40 bytes, never a frame. `accept` sees the validated header first (and
 * throws to refuse it). `external` names the blobs the pack may lack (a layer's: its base
 * carries them). Throws StoreError (or UnsafeEntryError).
 */
async function scanOpen(
  fh: FileHandle,
  accept: (header: PackHeader) => void,
  external?: (digest: string) => boolean,
): Promise<PackIndex> {
  const r = new PackReader(fh, (await fh.stat()).size);
  if (!(await r.read(PACK_MAGIC.length, 'magic')).equals(PACK_MAGIC)) {
    throw new StoreError('not a clyde pack (bad magic)');
  }
  const version = (await r.read(4, 'version')).readUInt32BE(0);
  if (version !== PACK_VERSION) {
    const older = OLDER_PACKS[version];
    throw new StoreError(
      older !== undefined
        ? `unsupported pack version ${version} (written by an older clyde-cache, ${older}); the entry will be saved again`
        : `unsupported pack version ${version} (this clyde-cache reads version ${PACK_VERSION})`,
    );
  }
  const metaBytes = await readSection(r, 'meta');
  let meta: unknown;
  try {
    meta = JSON.parse(metaBytes.toString('utf8'));
  } catch (err) {
    throw new StoreError(`pack meta is not JSON: ${err}`);
  }
  const header: PackHeader = { meta, table: await readSection(r, 'table') };
  const { manifest, locations } = manifestOfTable(header.table);
  accept(header);

  const needed = neededBlobs(manifest, locations);
  for (const [name, b] of needed) {
    if (b.members.length > 0 && b.size > MAX_GROUP_BYTES) {
      throw new StoreError(`pack group ${name} claims ${b.size} bytes`);
    }
  }
  const frames = new Map<string, { offset: number; length: number }>();
  let storedBytes = 0;
  for (;;) {
    const rec = await r.read(DIGEST_BYTES + 8, 'blob record');
    const raw = rec.subarray(0, DIGEST_BYTES);
    const len = rec.readBigUInt64BE(DIGEST_BYTES);
    if (raw.equals(END)) {
      if (len !== 0n) throw new StoreError('pack end marker is malformed');
      break;
    }
    const digest = raw.toString('hex');
    const need = needed.get(digest);
    if (need === undefined)
      throw new StoreError(`pack carries blob ${digest} that its entry does not use`);
    if (frames.has(digest)) throw new StoreError(`pack carries blob ${digest} twice`);
    if (len > BigInt(maxFrameBytes(need.size))) {
      throw new StoreError(
        `pack blob ${digest}: ${len} compressed bytes for ${need.size} bytes of content`,
      );
    }
    if (len > BigInt(r.remaining)) {
      throw new StoreError(
        `pack blob ${digest} claims ${len} bytes; only ${r.remaining} remain in the pack`,
      );
    }
    const length = Number(len);
    frames.set(digest, { offset: r.pos, length });
    r.pos += length;
    storedBytes += length;
  }
  if (!(await r.atEnd())) throw new StoreError('pack has data after its end marker');
  // (A layer lacks what its base carries: `external` says which.)
  const missing = [...needed.keys()].filter((d) => !frames.has(d) && external?.(d) !== true);
  if (missing.length > 0) {
    throw new StoreError(
      `pack lacks ${missing.length} blob(s) its entry needs, e.g. ${missing[0]}`,
    );
  }
  return { manifest, locations, frames, storedBytes };
}

/** scanOpen on a pack file. */
export async function scanPack(
  packFile: string,
  accept: (header: PackHeader) => void,
  external?: (digest: string) => boolean,
): Promise<PackIndex> {
  let fh: FileHandle;
  try {
    fh = await fs.open(packFile, 'r');
  } catch (err) {
    throw new StoreError(`cannot open pack ${packFile}: ${err}`);
  }
  try {
    return await scanOpen(fh, accept, external);
  } finally {
    await fh.close();
  }
}
