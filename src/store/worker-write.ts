/**
 * The store worker's restore side: files written from their blobs (a store's, or frames of a
 * downloaded pack), every file's content verified against its digest as it is written, large
 * blobs streamed (the decoding is worker-decode.ts's); and the verification of stored blobs
 * (`verifyBlobs`: before a pack is uploaded, and `verify --deep`), through the same decoding.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  STREAM_AT,
  type FilesWire,
  type GroupSlice,
  type VerifyArgs,
  type WriteWire,
} from './worker-protocol.js';
import { blobPath, fail, sha256Hex, writeAll } from './worker-core.js';
import { decodeStream, decodeWhole, readBlobFile, type FrameAt } from './worker-decode.js';

/** One file to write, as read back from a files wire. */
interface WireFile {
  readonly dest: string;
  readonly digest: string;
  readonly size: number;
  readonly mode: number;
  readonly mtimeMs: number | null;
}

/** A file of a write job, and where in the blob it sits. */
interface Member extends WireFile {
  readonly id: number;
  readonly offset: number;
}

/**
 * Mtime and mode through the open file, then its [id, inode, mtimeMs] into done. A file made
 * with its mode (open's mode, less the umask) needs no chmod: the fstat tells.
 */
function settle(fd: number, m: Member, done: number[]): void {
  if (m.mtimeMs !== null) {
    const t = m.mtimeMs / 1000;
    fs.futimesSync(fd, t, t);
  }
  const st = fs.fstatSync(fd);
  if ((st.mode & 0o7777) !== m.mode) fs.fchmodSync(fd, m.mode);
  done.push(m.id, st.ino, st.mtimeMs);
}

function writeMember(m: Member, content: Uint8Array, done: number[]): void {
  // (A new file's fd writes whatever mode it is made with.)
  const fd = fs.openSync(m.dest, 'wx', m.mode);
  try {
    writeAll(fd, content);
    settle(fd, m, done);
  } finally {
    fs.closeSync(fd);
  }
}

/** Streams a large standalone blob into one file, verifying as it goes. */
async function writeLarge(blob: string, at: FrameAt, m: Member, done: number[]): Promise<void> {
  const out = fs.openSync(m.dest, 'wx', 0o600);
  const hash = crypto.createHash('sha256');
  try {
    await decodeStream(blob, at, m.size, (piece) => {
      hash.update(piece);
      writeAll(out, piece);
    });
    if (hash.digest('hex') !== m.digest) {
      fail('corrupt', `blob ${blob}: content does not match its digest`);
    }
    settle(out, m, done);
  } finally {
    fs.closeSync(out);
  }
}

/** Where rel (a validated manifest path, '' for a file root) goes under base. */
function underRoot(base: string, rel: string): string {
  if (rel === '') return base;
  return base + path.sep + (path.sep === '/' ? rel : rel.replaceAll('/', path.sep));
}

/** File i of a files wire (names: its rels, split). */
function fileAt(w: FilesWire, names: readonly string[], i: number): WireFile {
  const mtime = w.mtimes[i] as number;
  return {
    dest: underRoot(w.bases[w.base[i] as number] as string, names[i] as string),
    digest: w.digests.slice(i * 64, i * 64 + 64),
    size: w.sizes[i] as number,
    mode: w.modes[i] as number,
    mtimeMs: Number.isNaN(mtime) ? null : mtime,
  };
}

interface WriteJob {
  readonly blob: string;
  readonly blobSize: number;
  readonly stream: boolean;
  readonly members: readonly Member[];
  readonly at: FrameAt;
}

async function write(
  { blob, blobSize, stream, members, at }: WriteJob,
  done: number[],
): Promise<void> {
  if (stream) {
    await writeLarge(blob, at, members[0] as Member, done);
    return;
  }
  const content = decodeWhole(readBlobFile(blob, at), blobSize, blob);
  // A group from a downloaded pack is checked whole too, so that a store adopting the pack's
  // frames (LocalStore.adoptPacks) holds only blobs that are what their names say.
  if (at.length !== undefined && members.some((m) => m.digest !== blob)) {
    if (sha256Hex(content) !== blob)
      fail('corrupt', `blob ${blob}: content does not match its digest`);
  }
  for (const m of members) {
    const slice = content.subarray(m.offset, m.offset + m.size);
    let why: string | null = null;
    if (m.offset + m.size > content.length) why = ' is shorter than its members';
    else if (sha256Hex(slice) !== m.digest) why = ': content does not match its digest';
    if (why === null) continue;
    // A group whose whole content still hashes to its name is sound: the entry placed the
    // file wrongly (a damaged artifact), and only the entry is at fault.
    if (blob !== m.digest && sha256Hex(content) === blob) {
      fail('size', `blob ${blob} does not hold ${m.digest} where its entry says`);
    }
    fail('corrupt', `blob ${blob}${why}`);
  }
  for (const m of members) writeMember(m, content.subarray(m.offset, m.offset + m.size), done);
}

export async function writeBatch(w: WriteWire): Promise<number[]> {
  const names = w.rels.split('\0');
  const done: number[] = [];
  for (let j = 0; j + 1 < w.starts.length; j++) {
    const members: Member[] = [];
    for (let i = w.starts[j] as number; i < (w.starts[j + 1] as number); i++) {
      members.push({
        ...fileAt(w, names, i),
        id: w.ids[i] as number,
        offset: w.offsets[i] as number,
      });
    }
    const blob = w.blobs.slice(j * 64, j * 64 + 64);
    const at: FrameAt = w.pack
      ? {
          file: w.pack.files[w.pack.frames[3 * j] as number] as string,
          offset: w.pack.frames[3 * j + 1] as number,
          length: w.pack.frames[3 * j + 2] as number,
        }
      : { file: blobPath(blob), offset: 0, length: undefined };
    const job = {
      blob,
      blobSize: w.blobSizes[j] as number,
      stream: w.streams[j] === 1,
      members,
      at,
    };
    await write(job, done);
  }
  return done;
}

/**
 * Checks a blob's content as it goes by, piece by piece, never holding more than one piece: the
 * sha256 of the whole, and of each member's slice (members may come in any order, even overlap:
 * a hostile table's are checked like any other).
 */
class ContentCheck {
  private readonly whole = crypto.createHash('sha256');
  private readonly members: GroupSlice[];
  private next = 0;
  private active: { m: GroupSlice; hash: crypto.Hash }[] = [];
  private pos = 0;

  constructor(
    private readonly name: string,
    members: readonly GroupSlice[],
  ) {
    this.members = [...members].sort((a, b) => a.offset - b.offset);
  }

  update(piece: Uint8Array): void {
    this.whole.update(piece);
    const start = this.pos;
    const end = start + piece.length;
    while (
      this.next < this.members.length &&
      (this.members[this.next] as GroupSlice).offset < end
    ) {
      this.active.push({
        m: this.members[this.next] as GroupSlice,
        hash: crypto.createHash('sha256'),
      });
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
  finish(): void {
    if (this.whole.digest('hex') !== this.name) {
      fail('corrupt', `blob ${this.name}: content does not match its digest`);
    }
    // Left: slices reaching past the end (the table checks refuse them before), and empty
    // members at the very end.
    for (const { m } of this.active) this.pastEnd(m);
    for (const m of this.members.slice(this.next)) {
      if (m.size > 0 || m.offset > this.pos) this.pastEnd(m);
      this.check(m, crypto.createHash('sha256'));
    }
  }

  private pastEnd(m: GroupSlice): never {
    fail('corrupt', `blob ${this.name}: grouped file ${m.digest} lies past its end`);
  }

  private check(m: GroupSlice, hash: crypto.Hash): void {
    if (hash.digest('hex') !== m.digest) {
      fail('corrupt', `blob ${this.name}: grouped file ${m.digest} does not match its digest`);
    }
  }
}

/**
 * Verifies stored blobs (a store's files, or frames lent from packs): each must decode to its
 * size and digest, and each grouped file's slice to its own. Content below STREAM_AT is decoded
 * whole as restore does, larger content streamed in pieces, so memory stays bounded whatever
 * sizes the caller (an entry's table) declares.
 */
export async function verifyBlobs({ blobs }: VerifyArgs): Promise<null> {
  for (const b of blobs) {
    const at: FrameAt = b.at ?? { file: blobPath(b.name), offset: 0, length: undefined };
    const check = new ContentCheck(b.name, b.members);
    if (b.size < STREAM_AT) check.update(decodeWhole(readBlobFile(b.name, at), b.size, b.name));
    else await decodeStream(b.name, at, b.size, (piece) => check.update(piece));
    check.finish();
  }
  return null;
}
