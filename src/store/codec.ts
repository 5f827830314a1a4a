/**
 * zstd at level 3 (with smaller match tables, see HASH_LOG), from zstd-napi where its native binary loads, else Node 24's `node:zlib`.
 * Both backends write plain zstd frames, so each reads the other's output.
 *
 * `decompress` takes the size the content must have (it is always known: the manifest records
 * it) and refuses to produce more, so a hostile frame cannot make us allocate gigabytes; it
 * holds the whole content in one buffer, so it is for small content only.
 * `decompressStream` hands the content out in pieces of at most `PIECE_BYTES` and stops as soon
 * as it exceeds the expected size: memory stays bounded whatever size a manifest declares
 * (the decoders also refuse windows above zstd's default limit of 128 MiB).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { StoreError } from '../errors.js';
import { CHAIN_LOG, HASH_LOG, LEVEL } from './codec-rules.js';

// The rules both threads follow live in codec-rules.ts (the workers import it too).
export {
  CHAIN_LOG,
  HASH_LOG,
  LEVEL,
  MIN_SAVING,
  RAW_BLOCK_MAX,
  isRawFrame,
  rawFrame,
} from './codec-rules.js';

export type CodecName = 'zstd-napi' | 'node:zlib';

export interface Codec {
  readonly name: CodecName;
  compress(buf: Buffer): Buffer;
  /**
   * Decompresses `buf`, which must hold exactly `expectedSize` bytes of content, into one
   * buffer: only for content known to be small (a group); else `decompressStream`.
   */
  decompress(buf: Buffer, expectedSize: number): Buffer;
  /**
   * Decompresses the zstd frames `source` yields, which must hold exactly `expectedSize` bytes
   * of content, handing it to `onPiece` in pieces of at most PIECE_BYTES (a piece is valid
   * until `onPiece`'s promise settles). Throws FrameSizeMismatch as soon as the content
   * exceeds `expectedSize` (nothing more is decoded) or when it ends short; StoreError on a
   * frame that will not decode; an error from `source` or `onPiece` as it is.
   */
  decompressStream(
    source: AsyncIterable<Uint8Array>,
    expectedSize: number,
    onPiece: (piece: Buffer) => void | Promise<void>,
  ): Promise<void>;
}

/** The largest piece of content `decompressStream` hands out at once. */
export const PIECE_BYTES = 256 * 1024;

function tooMuch(expectedSize: number): FrameSizeMismatch {
  return new FrameSizeMismatch(`zstd frame holds more than ${expectedSize} bytes`);
}

function checkTotal(total: number, expectedSize: number): void {
  if (total !== expectedSize) {
    throw new FrameSizeMismatch(`zstd frame holds ${total} bytes, expected ${expectedSize}`);
  }
}

/**
 * Finds where each zstd frame of a stream ends, by walking the frame and block headers (their
 * sizes say how far to skip): node:zlib's decoder stops at the end of the first frame and drops
 * the rest, so each frame of a chunked blob (chunked.ts) gets a decoder of its own. Skippable
 * frames are frames too; anything else is refused.
 */
export class FrameScanner {
  private state: 'magic' | 'skippable' | 'descriptor' | 'block' | 'skip' = 'magic';
  private acc: number[] = [];
  private skipLeft = 0;
  /** What follows the bytes being skipped: a block header, or the frame's end. */
  private thenEnd = false;
  private checksum = false;

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

  /** After a header byte: true when the frame ended. */
  private step(): boolean {
    const a = this.acc;
    if (this.state === 'magic' && a.length === 4) {
      const m = (a[0] as number) | ((a[1] as number) << 8) | ((a[2] as number) << 16);
      const top = a[3] as number;
      this.acc = [];
      if (m === 0x2fb528 && top === 0xfd) this.state = 'descriptor';
      else if ((m & 0xfffff0) === 0x4d2a50 && top === 0x18) this.state = 'skippable';
      else throw new StoreError('corrupt zstd frame: bad magic number');
    } else if (this.state === 'skippable' && a.length === 4) {
      const n =
        ((a[0] as number) | ((a[1] as number) << 8) | ((a[2] as number) << 16)) +
        (a[3] as number) * 2 ** 24;
      this.acc = [];
      return this.skip(n, true);
    } else if (this.state === 'descriptor') {
      const fhd = a[0] as number;
      this.acc = [];
      if (fhd & 0x08) throw new StoreError('corrupt zstd frame: reserved bit set');
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
      if (type === 3) throw new StoreError('corrupt zstd frame: reserved block type');
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

/**
 * node:zlib's streaming decoder, one per frame (FrameScanner); its backpressure keeps a few
 * pieces in memory at most.
 */
async function nodeDecompressStream(
  source: AsyncIterable<Uint8Array>,
  expectedSize: number,
  onPiece: (piece: Buffer) => void | Promise<void>,
): Promise<void> {
  let total = 0;
  // Errors of our own (the source, the frame walk, the sink, the size check) pass through as
  // they are; only the decoder's own become "corrupt".
  let ours: unknown;
  const input = source[Symbol.asyncIterator]();
  const scanner = new FrameScanner();
  let pending: Uint8Array | undefined;
  let ended = false;
  const next = async (): Promise<Uint8Array | undefined> => {
    if (pending !== undefined) {
      const p = pending;
      pending = undefined;
      return p;
    }
    if (ended) return undefined;
    try {
      const r = await input.next();
      if (r.done === true) ended = true;
      return r.done === true ? undefined : r.value;
    } catch (err) {
      ours ??= err;
      throw err;
    }
  };
  // The bytes of one frame (the decoder reports a frame cut short).
  const frame = async function* (): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = await next();
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
      const first = await next();
      if (first === undefined) break;
      if (first.length === 0) continue;
      pending = first;
      frames++;
      await pipeline(
        Readable.from(frame(), { objectMode: false, highWaterMark: PIECE_BYTES }),
        zlib.createZstdDecompress({ chunkSize: PIECE_BYTES }),
        async (out: AsyncIterable<Buffer>) => {
          try {
            for await (const piece of out) {
              total += piece.length;
              if (total > expectedSize) throw tooMuch(expectedSize);
              await onPiece(piece);
            }
          } catch (err) {
            ours ??= err;
            throw err;
          }
        },
      );
      if (!scanner.between) throw new StoreError('corrupt zstd frame: it is truncated');
    }
  } catch (err) {
    if (ours !== undefined) throw ours;
    if (err instanceof StoreError) throw err;
    throw new StoreError(`corrupt zstd frame: ${err instanceof Error ? err.message : err}`);
  }
  if (frames === 0) throw new StoreError('corrupt zstd frame: it is empty');
  checkTotal(total, expectedSize);
}

/**
 * The frame holds a different amount of content than expected. Unlike a frame that will not
 * decode, this may be the manifest's fault rather than the blob's.
 */
export class FrameSizeMismatch extends StoreError {}

/** The environment variable that picks a backend: `node` forces node:zlib, `native` requires zstd-napi. */
export const BACKEND_ENV = 'CLYDE_ZSTD_BACKEND';

function nodeCodec(): Codec {
  if (typeof zlib.zstdCompressSync !== 'function') {
    throw new StoreError('node:zlib has no zstd support (Node 24 or later is required)');
  }
  // Never set ZSTD_c_nbWorkers: the async and stream forms break with workers (performance-notes).
  const params = {
    [zlib.constants.ZSTD_c_compressionLevel]: LEVEL,
    [zlib.constants.ZSTD_c_hashLog]: HASH_LOG,
    [zlib.constants.ZSTD_c_chainLog]: CHAIN_LOG,
  };
  return {
    name: 'node:zlib',
    compress: (buf) => zlib.zstdCompressSync(buf, { params }),
    decompress(buf, expectedSize) {
      let out: Buffer;
      try {
        // maxOutputLength must be at least 1; the size check below catches the difference.
        out = zlib.zstdDecompressSync(buf, { maxOutputLength: Math.max(1, expectedSize) });
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new FrameSizeMismatch(`zstd frame holds more than ${expectedSize} bytes`);
        }
        throw new StoreError(`corrupt zstd frame: ${err}`);
      }
      if (out.length !== expectedSize) {
        throw new FrameSizeMismatch(
          `zstd frame holds ${out.length} bytes, expected ${expectedSize}`,
        );
      }
      return out;
    },
    decompressStream: nodeDecompressStream,
  };
}

interface NapiModule {
  compress(
    data: Uint8Array,
    parameters?: { compressionLevel?: number; hashLog?: number; chainLog?: number },
  ): Buffer;
}
interface NapiDCtx {
  decompress(dst: Uint8Array, src: Uint8Array): number;
  /** [0 when a frame just ended (else a hint), bytes produced, bytes consumed] */
  decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number];
}
interface NapiBinding {
  DCtx: new () => NapiDCtx;
}

/** zstd-napi's streaming decoder: a context of its own per call (calls may interleave). */
async function napiDecompressStream(
  binding: NapiBinding,
  source: AsyncIterable<Uint8Array>,
  expectedSize: number,
  onPiece: (piece: Buffer) => void | Promise<void>,
): Promise<void> {
  const dctx = new binding.DCtx();
  const dst = Buffer.allocUnsafe(PIECE_BYTES);
  let total = 0;
  // What the last call that moved anything answered: 0 when a frame just ended.
  let last = 1;
  for await (const chunk of source) {
    let s = chunk;
    for (;;) {
      let r: [number, number, number];
      try {
        r = dctx.decompressStream(dst, s);
      } catch (err) {
        throw new StoreError(`corrupt zstd frame: ${err instanceof Error ? err.message : err}`);
      }
      const [ret, produced, consumed] = r;
      if (produced > 0 || consumed > 0) last = ret;
      if (produced > 0) {
        total += produced;
        if (total > expectedSize) throw tooMuch(expectedSize);
        await onPiece(dst.subarray(0, produced));
      }
      s = s.subarray(consumed);
      // Done with this chunk once it is consumed and nothing more comes out.
      if (s.length === 0 && produced === 0) break;
    }
  }
  if (last !== 0) throw new StoreError('corrupt zstd frame: it is truncated');
  checkTotal(total, expectedSize);
}

async function nativeCodec(): Promise<Codec> {
  // Dynamic imports of the CommonJS package: the form @vercel/ncc carries, binary included.
  const mod = (await import('zstd-napi')) as unknown as { default?: NapiModule } & NapiModule;
  const napi: NapiModule = mod.default ?? mod;
  const bindingMod = (await import('zstd-napi/binding.js')) as unknown as {
    default?: NapiBinding;
  } & NapiBinding;
  const binding: NapiBinding = bindingMod.default ?? bindingMod;
  const dctx = new binding.DCtx();
  const codec: Codec = {
    name: 'zstd-napi',
    compress: (buf) =>
      napi.compress(buf, { compressionLevel: LEVEL, hashLog: HASH_LOG, chainLog: CHAIN_LOG }),
    decompress(buf, expectedSize) {
      // Decompressing into a buffer of exactly the expected size bounds the output: a frame
      // holding more fails with "destination buffer is too small".
      const out = Buffer.allocUnsafe(expectedSize);
      let n: number;
      try {
        n = dctx.decompress(out, buf);
      } catch (err) {
        if (/too small/i.test(String(err))) {
          throw new FrameSizeMismatch(`zstd frame holds more than ${expectedSize} bytes`);
        }
        throw new StoreError(`corrupt zstd frame: ${err}`);
      }
      if (n !== expectedSize) {
        throw new FrameSizeMismatch(`zstd frame holds ${n} bytes, expected ${expectedSize}`);
      }
      return out;
    },
    decompressStream: (source, expectedSize, onPiece) =>
      napiDecompressStream(binding, source, expectedSize, onPiece),
  };
  // A binary that loads but misbehaves must not be trusted with the store.
  const probe = Buffer.from('clyde-cache codec probe');
  if (!codec.decompress(codec.compress(probe), probe.length).equals(probe)) {
    throw new StoreError('zstd-napi failed its round-trip check');
  }
  return codec;
}

/**
 * A codec with the given backend, not memoised (tests use it to check interoperability).
 * `native` throws when zstd-napi will not load.
 */
export async function createCodec(backend: 'native' | 'node'): Promise<Codec> {
  if (backend === 'node') return nodeCodec();
  try {
    return await nativeCodec();
  } catch (err) {
    throw new StoreError(`zstd-napi is not available: ${err instanceof Error ? err.message : err}`);
  }
}

let memo: Promise<Codec> | undefined;

/**
 * The process-wide codec: zstd-napi if it loads, else node:zlib. `CLYDE_ZSTD_BACKEND=node`
 * forces node:zlib; `=native` requires zstd-napi (the promise rejects if it will not load).
 */
export function loadCodec(): Promise<Codec> {
  memo ??= pickCodec();
  return memo;
}

async function pickCodec(): Promise<Codec> {
  const wanted = (process.env[BACKEND_ENV] ?? '').trim().toLowerCase();
  if (wanted === 'node') return nodeCodec();
  if (wanted === 'native') return createCodec('native');
  try {
    return await nativeCodec();
  } catch {
    return nodeCodec();
  }
}
