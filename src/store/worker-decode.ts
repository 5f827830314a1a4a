/**
 * The store worker's zstd decoding, shared by restore (worker-write.ts `writeBatch`) and
 * verification (`verifyBlobs`): a blob's frame read from its file in the store or from a range
 * of a pack, decoded whole (small content, into a reused buffer of exactly the size the caller
 * expects) or streamed in bounded pieces. Neither ever produces more than the expected size: a
 * frame that holds more fails ('size') as soon as it does, so a hostile frame cannot make us
 * allocate what it claims (the decoders also refuse windows above zstd's default 128 MiB).
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { CHUNK, codeOf, fail, napi, native, OpFailure, scratchOf } from './worker-core.js';

/** Content of `size` bytes (known to be small) decoded from `frame` into a reused buffer. */
export function decodeWhole(frame: Uint8Array, size: number, blob: string): Uint8Array {
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
export interface FrameAt {
  readonly file: string;
  readonly offset: number;
  /** The range's length; undefined for a whole store file. */
  readonly length: number | undefined;
}

export function openFrame(blob: string, at: FrameAt): number {
  try {
    return fs.openSync(at.file, 'r');
  } catch (err) {
    fail('missing', `blob ${blob} is missing from the store: ${err}`);
  }
}

/** The blob's stored bytes, in frameBuf (valid until the next call). */
export function readBlobFile(blob: string, at: FrameAt): Buffer {
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

/** The largest piece node:zlib's decoder hands out at once. */
const PIECE_BYTES = 256 * 1024;

/**
 * Decodes the frames of blob `blob` at `at`, which must hold exactly `size` bytes of content,
 * handing it to `onPiece` in pieces (each valid only during the call). Fails 'size' as soon as
 * the content exceeds `size` (nothing more is decoded) or when it ends short, 'corrupt' on a
 * frame that will not decode, 'missing' when the file cannot be opened; returns `size`.
 */
export async function decodeStream(
  blob: string,
  at: FrameAt,
  size: number,
  onPiece: (piece: Uint8Array) => void,
): Promise<number> {
  const src = openFrame(blob, at);
  const end = at.length === undefined ? Infinity : at.offset + at.length;
  let total = 0;
  const take = (piece: Uint8Array): void => {
    total += piece.length;
    if (total > size) fail('size', `blob ${blob} holds more than ${size} bytes`);
    onPiece(piece);
  };
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
          if (produced > 0) take(dst.subarray(0, produced));
          s = s.subarray(consumed);
          // Done with this chunk only when it is consumed and nothing more comes out.
          if (s.length === 0 && produced === 0) break;
        }
      }
      if (last !== 0) fail('corrupt', `blob ${blob}: truncated zstd frame`);
    } else {
      await nodeDecode(blob, rangeOf(src, at.offset, end), take);
    }
  } finally {
    fs.closeSync(src);
  }
  if (total !== size) fail('size', `blob ${blob} holds ${total} bytes, expected ${size}`);
  return total;
}

/** The bytes of fd from `start` up to `end` (Infinity: its end), in fresh 1 MiB buffers. */
function* rangeOf(fd: number, start: number, end: number): Generator<Buffer> {
  let pos = start;
  while (pos < end) {
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, end - pos));
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return;
    pos += n;
    yield buf.subarray(0, n);
  }
}

/**
 * node:zlib's streaming decoder, one per frame (`FrameScanner`): it stops at the end of the
 * first frame and drops the rest, and a blob written in chunks (chunked.ts) is several frames.
 * Its backpressure keeps a few pieces in memory at most. Our own failures (the frame walk,
 * `take`'s size check) pass through as they are; only the decoder's become 'corrupt'.
 */
async function nodeDecode(
  blob: string,
  source: Iterator<Buffer>,
  take: (piece: Uint8Array) => void,
): Promise<void> {
  let ours: unknown;
  const scanner = new FrameScanner(blob);
  let pending: Uint8Array | undefined;
  const next = (): Uint8Array | undefined => {
    if (pending !== undefined) {
      const p = pending;
      pending = undefined;
      return p;
    }
    const r = source.next();
    return r.done === true ? undefined : r.value;
  };
  // The bytes of one frame (the decoder reports a frame cut short).
  const frame = function* (): Generator<Uint8Array> {
    for (;;) {
      const chunk = next();
      if (chunk === undefined) return;
      let scanned: { used: number; done: boolean };
      try {
        scanned = scanner.scan(chunk);
      } catch (err) {
        ours ??= err;
        throw err;
      }
      if (scanned.used < chunk.length) pending = chunk.subarray(scanned.used);
      if (scanned.used > 0) yield chunk.subarray(0, scanned.used);
      if (scanned.done) return;
    }
  };
  let frames = 0;
  try {
    for (;;) {
      const first = next();
      if (first === undefined) break;
      if (first.length === 0) continue;
      pending = first;
      frames++;
      await pipeline(
        Readable.from(frame(), { objectMode: false, highWaterMark: PIECE_BYTES }),
        zlib.createZstdDecompress({ chunkSize: PIECE_BYTES }),
        async (out: AsyncIterable<Buffer>) => {
          for await (const piece of out) {
            try {
              take(piece);
            } catch (err) {
              ours ??= err;
              throw err;
            }
          }
        },
      );
      if (!scanner.between) fail('corrupt', `blob ${blob}: truncated zstd frame`);
    }
  } catch (err) {
    if (ours !== undefined) throw ours;
    if (err instanceof OpFailure) throw err;
    fail(
      'corrupt',
      `blob ${blob}: corrupt zstd frame: ${err instanceof Error ? err.message : err}`,
    );
  }
  if (frames === 0) fail('corrupt', `blob ${blob}: corrupt zstd frame: it is empty`);
}

/**
 * Finds where each zstd frame of a stream ends, by walking the frame and block headers (their
 * sizes say how far to skip). Skippable frames are frames too; anything else is refused.
 */
export class FrameScanner {
  private state: 'magic' | 'skippable' | 'descriptor' | 'block' | 'skip' = 'magic';
  private acc: number[] = [];
  private skipLeft = 0;
  /** What follows the bytes being skipped: a block header, or the frame's end. */
  private thenEnd = false;
  private checksum = false;

  constructor(private readonly blob: string) {}

  /** How many bytes of `chunk` belong to the current frame, and whether it ends with them. */
  scan(chunk: Uint8Array): { used: number; done: boolean } {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, chunk.length - i);
        i += n;
        this.skipLeft -= n;
        if (this.skipLeft === 0 && this.afterSkip()) return { used: i, done: true };
        continue;
      }
      this.acc.push(chunk[i++] as number);
      if (this.step()) return { used: i, done: true };
    }
    return { used: i, done: false };
  }

  /** Whether the scanner sits between frames (nothing of a frame seen yet). */
  get between(): boolean {
    return this.state === 'magic' && this.acc.length === 0;
  }

  private bad(why: string): never {
    fail('corrupt', `blob ${this.blob}: corrupt zstd frame: ${why}`);
  }

  /** After a header byte: true when the frame ended. */
  private step(): boolean {
    const a = this.acc;
    if (this.state === 'magic' && a.length === 4) {
      const m = (a[0] as number) | ((a[1] as number) << 8) | ((a[2] as number) << 16);
      const top = a[3] as number;
      this.acc = [];
      if (m === 0x2fb528 && top === 0xfd) this.state = 'descriptor';
      else if ((m & 0xfffff0) === 0x4d2a50 && top === 0x18) this.state = 'skippable';
      else this.bad('bad magic number');
    } else if (this.state === 'skippable' && a.length === 4) {
      const n =
        ((a[0] as number) | ((a[1] as number) << 8) | ((a[2] as number) << 16)) +
        (a[3] as number) * 2 ** 24;
      this.acc = [];
      return this.skip(n, true);
    } else if (this.state === 'descriptor') {
      const fhd = a[0] as number;
      this.acc = [];
      if (fhd & 0x08) this.bad('reserved bit set');
      const single = (fhd >> 5) & 1;
      const fcs = fhd >> 6;
      this.checksum = ((fhd >> 2) & 1) === 1;
      const dictBytes = (fhd & 3) === 3 ? 4 : fhd & 3;
      const sizeBytes = fcs === 0 ? single : 1 << fcs;
      const rest = (single ? 0 : 1) + dictBytes + sizeBytes;
      return this.skip(rest, false);
    } else if (this.state === 'block' && a.length === 3) {
      const v = (a[0] as number) | ((a[1] as number) << 8) | ((a[2] as number) << 16);
      this.acc = [];
      const type = (v >> 1) & 3;
      if (type === 3) this.bad('reserved block type');
      const body = type === 1 ? 1 : v >>> 3;
      const last = (v & 1) === 1;
      return this.skip(body + (last && this.checksum ? 4 : 0), last);
    }
    return false;
  }

  /** Skips `n` bytes, then a block header or (thenEnd) the frame's end; true when it ended. */
  private skip(n: number, thenEnd: boolean): boolean {
    this.skipLeft = n;
    this.thenEnd = thenEnd;
    this.state = 'skip';
    return n === 0 && this.afterSkip();
  }

  private afterSkip(): boolean {
    this.state = this.thenEnd ? 'magic' : 'block';
    return this.thenEnd;
  }
}
