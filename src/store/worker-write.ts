/**
 * The store worker's restore side: files written from their blobs (a store's, or frames of a
 * downloaded pack), every file's content verified against its digest as it is written, large
 * blobs streamed.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import type { FilesWire, WriteWire } from './worker-protocol.js';
import {
  blobPath,
  CHUNK,
  codeOf,
  fail,
  napi,
  native,
  OpFailure,
  scratchOf,
  sha256Hex,
  writeAll,
} from './worker-core.js';

function decodeWhole(frame: Uint8Array, size: number, blob: string): Uint8Array {
  if (native !== null) {
    const out = scratchOf(Math.max(size, 1)).subarray(0, size);
    let n: number;
    try {
      n = native.dctx.decompress(out, frame);
    } catch (err) {
      if (/too small/i.test(String(err)))
        fail('size', `blob ${blob} holds more than ${size} bytes`);
      fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
    }
    if (n !== size) fail('size', `blob ${blob} holds ${n} bytes, expected ${size}`);
    return out;
  }
  let out: Buffer;
  try {
    out = zlib.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, size) });
  } catch (err) {
    if (codeOf(err) === 'ERR_BUFFER_TOO_LARGE') {
      fail('size', `blob ${blob} holds more than ${size} bytes`);
    }
    fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
  }
  if (out.length !== size) fail('size', `blob ${blob} holds ${out.length} bytes, expected ${size}`);
  return out;
}

// Blob files are read into this buffer (reused, like scratch: fresh memory is slow to touch).
let frameBuf = Buffer.allocUnsafe(0);

/** Where a blob's frame is read from: its file in the store, or a range of a pack. */
interface FrameAt {
  readonly file: string;
  readonly offset: number;
  /** The range's length; undefined for a whole store file. */
  readonly length: number | undefined;
}

function openFrame(blob: string, at: FrameAt): number {
  try {
    return fs.openSync(at.file, 'r');
  } catch (err) {
    fail('missing', `blob ${blob} is missing from the store: ${err}`);
  }
}

/** The blob's stored bytes, in frameBuf (valid until the next call). */
function readBlobFile(blob: string, at: FrameAt): Buffer {
  const fd = openFrame(blob, at);
  try {
    if (at.length !== undefined) {
      if (frameBuf.length < at.length) {
        frameBuf = Buffer.allocUnsafe(Math.max(at.length, frameBuf.length * 2, 1 << 20));
      }
      let n = 0;
      while (n < at.length) {
        const r = fs.readSync(fd, frameBuf, n, at.length - n, at.offset + n);
        if (r === 0) fail('corrupt', `blob ${blob}: the pack ends inside its frame`);
        n += r;
      }
      return frameBuf.subarray(0, n);
    }
    const size = fs.fstatSync(fd).size;
    if (frameBuf.length < size + 1) {
      frameBuf = Buffer.allocUnsafe(Math.max(size + 1, frameBuf.length * 2, 1 << 20));
    }
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, frameBuf, n, frameBuf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === frameBuf.length) {
        // It grew since the fstat: room for the rest.
        const next = Buffer.allocUnsafe(frameBuf.length * 2);
        frameBuf.copy(next);
        frameBuf = next;
      }
    }
    return frameBuf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

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
  const src = openFrame(blob, at);
  const end = at.length === undefined ? Infinity : at.offset + at.length;
  const out = fs.openSync(m.dest, 'wx', 0o600);
  const hash = crypto.createHash('sha256');
  let total = 0;
  try {
    if (napi !== null && native !== null) {
      const dctx = native.dctx;
      dctx.reset(napi.ResetDirective.sessionOnly);
      const inBuf = Buffer.allocUnsafe(CHUNK);
      const dst = Buffer.allocUnsafe(CHUNK);
      let pos = at.offset;
      let last = 1;
      for (;;) {
        const n = fs.readSync(src, inBuf, 0, Math.min(CHUNK, end - pos), pos);
        if (n === 0) break;
        pos += n;
        let s = inBuf.subarray(0, n);
        for (;;) {
          let r: [number, number, number];
          try {
            r = dctx.decompressStream(dst, s);
          } catch (err) {
            fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
          }
          const [ret, produced, consumed] = r;
          // (A call after the frame's end, with nothing in or out, answers a new frame's hint.)
          if (produced > 0 || consumed > 0) last = ret;
          if (produced > 0) {
            total += produced;
            if (total > m.size) fail('size', `blob ${blob} holds more than ${m.size} bytes`);
            const piece = dst.subarray(0, produced);
            hash.update(piece);
            writeAll(out, piece);
          }
          s = s.subarray(consumed);
          // Done with this chunk only when it is consumed and nothing more comes out.
          if (s.length === 0 && produced === 0) break;
        }
      }
      if (last !== 0) fail('corrupt', `blob ${blob}: truncated zstd frame`);
    } else {
      fs.closeSync(out);
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          total += chunk.length;
          if (total > m.size) {
            cb(new OpFailure('size', `blob ${blob} holds more than ${m.size} bytes`));
            return;
          }
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(
          fs.createReadStream(at.file, {
            highWaterMark: 1 << 20,
            fd: src,
            autoClose: false,
            start: at.offset,
            ...(at.length === undefined ? {} : { end: end - 1 }),
          }),
          zlib.createZstdDecompress({ chunkSize: 256 * 1024 }),
          tap,
          fs.createWriteStream(m.dest, { flags: 'w', mode: 0o600 }),
        );
      } catch (err) {
        if (err instanceof OpFailure) throw err;
        fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
      }
    }
  } finally {
    fs.closeSync(src);
    try {
      fs.closeSync(out);
    } catch {
      // closed already (node:zlib path)
    }
  }
  if (total !== m.size) fail('size', `blob ${blob} holds ${total} bytes, expected ${m.size}`);
  if (hash.digest('hex') !== m.digest) {
    fail('corrupt', `blob ${blob}: content does not match its digest`);
  }
  const fd = fs.openSync(m.dest, 'r');
  try {
    settle(fd, m, done);
  } finally {
    fs.closeSync(fd);
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
