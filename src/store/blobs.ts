/**
 * Content-addressed blobs. Every blob is one zstd frame named by the sha256 of its content:
 *
 *   <root>/blobs/<aa>/<sha256>        a compressed frame, or (incompressible content, "stored as
 *                                     it is") a frame of raw blocks (codec-rules.ts
 *                                     `rawFrameParts`): any zstd decoder reads both
 *   <root>/blobs/<aa>/<sha256>        a group blob: the contents of several small files of one
 *                                     save back to back, compressed together (small files
 *                                     compress far worse alone); named by the digest of the
 *                                     concatenation, so it is an ordinary blob on disk
 *
 * A file's manifest digest is always the sha256 of its own content; a grouped file has no blob
 * of that name: the entry's table says where it lives (table.ts; `attach`). Writes go through
 * `<root>/tmp/` and a rename, so a blob is either absent or complete; concurrent writers of one
 * blob are harmless (same content). Reads always verify. Compressing and decoding are the
 * workers' (pool.ts); this thread only moves frames as they are.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { StoreError } from '../errors.js';
import { tempName } from '../util/fsx.js';
import {
  BLOB_NAME,
  blobPath,
  fileSizeSync,
  injectedFault,
  renameInto,
  writeOrAdopt,
} from './blob-layout.js';
import { frameRoom } from './codec-rules.js';
import { manifestFiles, type Manifest } from './manifest.js';
import { sharedPool, type Backend, type PoolDirs, type WorkerPool } from './pool.js';
import type { BlobToVerify, GroupSlice } from './worker-protocol.js';

/** Where a grouped file's content lives. */
export interface Location {
  /** The group blob's digest. */
  readonly group: string;
  /** Uncompressed size of the whole group. */
  readonly groupSize: number;
  readonly offset: number;
  readonly size: number;
}

/** The blobs holding `m`'s content, once each: a grouped file's group, else its own digest. */
export function contentBlobs(m: Manifest, locs: ReadonlyMap<string, Location>): Set<string> {
  const out = new Set<string>();
  for (const f of manifestFiles(m)) out.add(locs.get(f.digest)?.group ?? f.digest);
  return out;
}

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
export type Member = GroupSlice;

/** What a blob must hold: `size` bytes of content and, for a group, its members' slices. */
export interface BlobNeed {
  readonly size: number;
  readonly members: readonly Member[];
}

/** A frame of a downloaded pack: `length` bytes at `offset` of `file`. */
export interface LentFrame {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export class BlobStore {
  /** digest -> location of every grouped file this process has read a table for. */
  private readonly locations = new Map<string, Location>();

  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
    /** Fault injection (tests): blob writes after this many fail with ENOSPC. */
    private readonly enospcAfter?: number,
    /** The workers' backend, when forced (tests); else the process-wide pool's. */
    private readonly backend?: Backend,
  ) {}

  get dirs(): PoolDirs {
    return this.enospcAfter === undefined
      ? { blobDir: this.dir, tmpDir: this.tmpDir }
      : { blobDir: this.dir, tmpDir: this.tmpDir, enospcAfter: this.enospcAfter };
  }

  pool(): WorkerPool {
    return sharedPool(this.backend);
  }

  pathOf(digest: string): string {
    if (!BLOB_NAME.test(digest)) throw new StoreError(`not a sha256 digest: ${digest}`);
    return blobPath(this.dir, digest);
  }

  /**
   * Frames of downloaded packs this store reads in place instead of files of its own (`lend`):
   * a store made for one step takes the entry it restored this way, copying nothing.
   */
  private readonly lent = new Map<string, LentFrame>();

  /**
   * Makes each frame (verified already: every file of it was checked as it was restored) the
   * blob of its name, read in place from its pack until this store is closed; the packs must
   * outlive the store. A blob the store holds already is left as it is.
   */
  lend(frames: ReadonlyMap<string, LentFrame>): void {
    for (const [name, f] of frames) if (!this.lent.has(name)) this.lent.set(name, f);
  }

  /** Size on disk of the standalone blob `digest`, or undefined when there is none. */
  async ownSize(digest: string): Promise<number | undefined> {
    const lent = this.lent.get(digest);
    if (lent !== undefined) return lent.length;
    try {
      const st = await fs.stat(this.pathOf(digest));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** `ownSize`, without waiting (the walk's question for a few digests at a time). */
  ownSizeSync(digest: string): number | undefined {
    return this.lent.get(digest)?.length ?? fileSizeSync(this.pathOf(digest));
  }

  /** Where grouped content `digest` lives, from the tables already read (no disk access). */
  located(digest: string): Location | undefined {
    return this.locations.get(digest);
  }

  /**
   * Where the grouped files of `m` live: what the table it was read from carried (`attach`).
   * A manifest no table carried (built in memory) groups nothing.
   */
  locationsOf(m: Manifest): Map<string, Location> {
    return new Map(this.carried.get(m));
  }

  /** The locations a table carries for its manifest `m`. */
  attach(m: Manifest, locs: Map<string, Location>): void {
    this.carried.set(m, locs);
    this.learn(locs);
  }

  private readonly carried = new WeakMap<Manifest, Map<string, Location>>();

  /** Blobs `m` needs on disk (standalone digests and group digests) with their sizes. */
  async referencedBlobs(m: Manifest): Promise<Map<string, number | undefined>> {
    const out = new Map<string, number | undefined>();
    for (const name of contentBlobs(m, this.locationsOf(m)))
      out.set(name, await this.ownSize(name));
    return out;
  }

  /** Remembers the locations (for `located`); returns them. */
  private learn(locs: Map<string, Location>): Map<string, Location> {
    for (const [d, loc] of locs) this.locations.set(d, loc);
    return locs;
  }

  /**
   * Stores `content` (whose sha256 is `digest`) unless the blob exists, compressed by a worker
   * under the workers' rules (codec-rules.ts: small or incompressible content as it is, in a
   * frame of raw blocks). Returns the stored size and whether this call wrote it.
   */
  async put(digest: string, content: Buffer): Promise<{ stored: number; written: boolean }> {
    const existing = await this.ownSize(digest); // adopt (blob-layout.ts writeOrAdopt) first
    if (existing !== undefined) return { stored: existing, written: false };
    const out = new Uint8Array(frameRoom(content.length));
    const r = await this.pool().run('compressChunk', {
      dirs: this.dirs,
      data: content,
      out,
      length: content.length,
      name: '',
    });
    const frame = r.out.subarray(0, r.length);
    return writeOrAdopt(this.dirs, digest, [frame], tempName(this.tmpDir, 'blob'));
  }

  /**
   * Verifies the stored blob `name` against `need` (its content size and digest, and each
   * member's slice against its digest) in a worker (worker-write.ts `verifyBlobs`), which
   * decodes content of STREAM_AT or more in bounded pieces: memory stays the same whatever sizes
   * `need` declares. Throws StoreError naming the blob on any difference; returns the frame's
   * length.
   */
  async verifyStored(name: string, need: BlobNeed): Promise<number> {
    const lent = this.lent.get(name);
    const length = lent?.length ?? (await this.ownSize(name));
    if (length === undefined) throw new StoreError(`blob ${name} is missing from the store`);
    const blob: BlobToVerify = {
      name,
      size: need.size,
      members: need.members,
      ...(lent === undefined ? {} : { at: lent }),
    };
    await this.pool().run('verifyBlobs', { dirs: this.dirs, blobs: [blob] });
    return length;
  }

  /**
   * The stored frame of blob `name` as it is, unverified: its length, and its pieces (the file
   * is opened when they are first read, and closed when they end or the reading stops). Throws
   * when there is no such blob, or its length is not `expected` (when given).
   */
  async storedFrame(
    name: string,
    expected?: number,
  ): Promise<{ length: number; pieces: AsyncGenerator<Buffer> }> {
    const lent = this.lent.get(name);
    const file = lent?.file ?? this.pathOf(name);
    const length = lent?.length ?? (await this.ownSize(name));
    if (length === undefined) throw new StoreError(`blob ${name} is missing from the store`);
    if (expected !== undefined && length !== expected) {
      throw new StoreError(`blob ${name} changed while it was packed`);
    }
    const start = lent?.offset ?? 0;
    async function* pieces(): AsyncGenerator<Buffer> {
      let fh: FileHandle;
      try {
        fh = await fs.open(file, 'r');
      } catch (err) {
        throw new StoreError(`blob ${name} is missing from the store: ${err}`);
      }
      try {
        yield* fileRange(fh, start, length as number, `blob ${name}`);
      } finally {
        await fh.close();
      }
    }
    return { length, pieces: pieces() };
  }

  /**
   * Stores the frame `source` yields as blob `name` as it is, unverified: for frames whose
   * every file was verified as it was restored (adoptPacks). A blob that exists is left alone.
   */
  async adoptFrame(name: string, source: AsyncIterable<Uint8Array>): Promise<void> {
    if ((await this.ownSize(name)) !== undefined) return;
    // blob-layout.ts writeOrAdopt's steps for a frame streamed to tmp/ first.
    injectedFault(this.dirs);
    const tmp = tempName(this.tmpDir, 'adopt');
    try {
      const out = await fs.open(tmp, 'wx', 0o444);
      try {
        for await (const piece of source) await out.write(piece);
      } finally {
        await out.close();
      }
      renameInto(tmp, this.pathOf(name));
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async remove(digest: string): Promise<void> {
    this.lent.delete(digest);
    await fs.rm(this.pathOf(digest), { force: true });
  }
}
