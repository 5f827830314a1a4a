/**
 * The store's worker thread (started by pool.ts from the file beside it: build/src/store/ in
 * tests, dist/<entry>/ in the bundle, where scripts/bundle.ts puts it). It hashes, compresses,
 * decompresses and writes files; the operations, their arguments and results are typed once in
 * worker-protocol.ts. It loads zstd-napi's binary from the path the main thread found
 * (`StoreWorkerData.binding`) and falls back to `node:zlib` when there is none or it will not
 * load.
 *
 * Everything inside is synchronous per item (two threads on two cores keep the CPU busy while
 * the other waits on I/O) except node:zlib's streaming restore of large blobs. Blobs are
 * written to tmp/ and renamed into place; a blob that exists already is not rewritten.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import type * as Binding from 'zstd-napi/binding.js';
import { compareBytes } from '../util/bytes.js';
import {
  CHAIN_LOG,
  HASH_LOG,
  LEVEL,
  keepsFrame,
  rawFrameParts,
  worthCompressing,
} from './codec-rules.js';
import { blobPath as blobPathIn, renameInto, unpackedPath, writeOrAdopt } from './blob-layout.js';
import {
  UNPACKED_MTIME_MS,
  claimKey,
  claimSlot,
  type ArgsOf,
  type ChunkArgs,
  type ChunkResult,
  type DirListing,
  type FilesWire,
  type GroupMember,
  type GroupResult,
  type LinkWire,
  type ListArgs,
  type MkdirArgs,
  type PoolDirs,
  type PutArgs,
  type PutResult,
  type ResultOf,
  type StoreOp,
  type StoreReply,
  type StoreRequest,
  type StoreWorkerData,
  type WorkerFailureKind,
  type WriteWire,
} from './worker-protocol.js';

const CHUNK = 4 * 1024 * 1024;

/** A failure the main thread tells apart by kind (pool.ts WorkerOpError). */
class OpFailure extends Error {
  constructor(
    readonly kind: WorkerFailureKind,
    message: string,
  ) {
    super(message);
  }
}

function fail(kind: WorkerFailureKind, message: string): never {
  throw new OpFailure(kind, message);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

type Napi = typeof Binding;

/**
 * The native binary, loaded by its path as `require` would (process.dlopen): the bundler
 * leaves this alone, so the worker bundle carries no copy of zstd-napi of its own.
 */
function loadBinding(file: string | undefined): Napi | null {
  if (file === undefined) return null;
  try {
    const mod = { exports: {} as Napi };
    process.dlopen(mod, file);
    return mod.exports;
  } catch {
    return null;
  }
}

const data = workerData as StoreWorkerData;
const napi = loadBinding(data.binding);
interface NativeContexts {
  readonly cctx: Binding.CCtx;
  readonly dctx: Binding.DCtx;
}
const native: NativeContexts | null =
  napi === null
    ? null
    : (() => {
        const cctx = new napi.CCtx();
        cctx.setParameter(napi.CParameter.compressionLevel, LEVEL);
        cctx.setParameter(napi.CParameter.hashLog, HASH_LOG);
        cctx.setParameter(napi.CParameter.chainLog, CHAIN_LOG);
        return { cctx, dctx: new napi.DCtx() };
      })();
const zparams = {
  [zlib.constants.ZSTD_c_compressionLevel]: LEVEL,
  [zlib.constants.ZSTD_c_hashLog]: HASH_LOG,
  [zlib.constants.ZSTD_c_chainLog]: CHAIN_LOG,
};

/**
 * Restored content is written at most this much per write(): on the machines measured, writes
 * of 2 MiB and more filled the page cache ~10x slower than writes of 1 MiB or less (126 MB in
 * ~300 ms against ~30 ms; the kernel gives large writes large folios, and fresh memory is slow
 * to touch there), and small writes cost nothing measurable.
 */
const WRITE_PIECE = 512 * 1024;

/** Writes all of buf to fd in pieces of at most WRITE_PIECE. */
function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    off += fs.writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off));
  }
}

let dirs: PoolDirs = { blobDir: '', tmpDir: '' };
let tmpSeq = 0;
function tmpName(hint: string): string {
  return path.join(dirs.tmpDir, `${hint}-${process.pid}-${threadId}-${tmpSeq++}`);
}
function blobPath(digest: string): string {
  return blobPathIn(dirs.blobDir, digest);
}
function storedSize(digest: string): number {
  try {
    const st = fs.statSync(blobPath(digest));
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

function sha256Hex(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

// Scratch buffers, reused: fresh memory is slow to touch on these machines.
let scratch = Buffer.allocUnsafe(0);
function scratchOf(n: number): Buffer {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2, 1 << 20));
  return scratch;
}

function compress(buf: Uint8Array): Uint8Array {
  if (napi !== null && native !== null) {
    const out = scratchOf(napi.compressBound(buf.length));
    const n = native.cctx.compress2(out, buf);
    return out.subarray(0, n);
  }
  return zlib.zstdCompressSync(buf, { params: zparams });
}

/** Writes the blob from its frame's parts (blob-layout.ts `writeOrAdopt`); its stored size. */
function writeBlob(digest: string, parts: readonly Uint8Array[]): number {
  return writeOrAdopt(dirs, digest, parts, tmpName('blob')).stored;
}

/** Compressed parts of content, or raw parts when compression saves too little. */
function encode(content: Uint8Array, name: string): { parts: Uint8Array[]; raw: boolean } {
  if (worthCompressing(content.length, name)) {
    const frame = compress(content);
    if (keepsFrame(frame.length, content.length)) return { parts: [frame], raw: false };
  }
  return { parts: rawFrameParts(content), raw: true };
}

/**
 * Claims content for this save in the save's table shared by every worker (a SharedArrayBuffer
 * of 64-bit slots, open addressing, worker-protocol.ts `claimKey`): false when another file of
 * the save claimed the same first 64 bits of digest first. The caller stores the content only
 * when it holds the claim; the main thread pairs each duplicate with its claimer by the full
 * digest, and stores it after all when none matches. A full table claims nothing (everything
 * is stored).
 */
function claim(claims: SharedArrayBuffer | undefined, digest: string): boolean {
  if (claims === undefined) return true;
  const tab = new BigInt64Array(claims);
  const key = claimKey(digest);
  const mask = tab.length - 1;
  let i = claimSlot(key, mask);
  for (let probe = 0; probe < 64; probe++, i = (i + 1) & mask) {
    const prev = Atomics.compareExchange(tab, i, 0n, key);
    if (prev === 0n) return true;
    if (prev === key) return false;
  }
  return true;
}

/** The digests in known (32 bytes each), as hex. */
function knownSet(known: Uint8Array | undefined): Set<string> {
  const out = new Set<string>();
  if (known === undefined || known.length === 0) return out;
  const hex = Buffer.from(known.buffer, known.byteOffset, known.byteLength).toString('hex');
  for (let i = 0; i < hex.length; i += 64) out.add(hex.slice(i, i + 64));
  return out;
}

function putFiles({ files, known, claims }: PutArgs): PutResult[] {
  const skip = knownSet(known);
  const out: PutResult[] = [];
  for (const f of files) {
    // Read into the reused buffer: fresh memory per file costs page faults and collections.
    const n = readInto(f.abs, f.size, 0);
    const content = groupBuf.subarray(0, n);
    const digest = sha256Hex(content);
    const size = content.length;
    if (skip.has(digest)) {
      out.push({ digest, size, stored: 0, written: false, raw: false, known: true });
      continue;
    }
    if (!claim(claims, digest)) {
      out.push({ digest, size, stored: 0, written: false, raw: false, dup: true });
      continue;
    }
    const existing = storedSize(digest);
    if (existing >= 0) {
      out.push({ digest, size, stored: existing, written: false, raw: false });
      continue;
    }
    const { parts, raw } = encode(content, f.abs);
    const stored = writeBlob(digest, parts);
    out.push({ digest, size, stored, written: true, raw });
  }
  return out;
}

// The members of a group are read straight into this buffer, back to back (reused).
let groupBuf = Buffer.allocUnsafe(0);
function groupRoom(n: number): void {
  if (groupBuf.length >= n) return;
  const next = Buffer.allocUnsafe(Math.max(n, groupBuf.length * 2, 4 << 20));
  groupBuf.copy(next);
  groupBuf = next;
}

/** Reads the file (size bytes when walked) into groupBuf at offset at; returns its length. */
function readInto(abs: string, size: number, at: number): number {
  groupRoom(at + size + 1);
  const fd = fs.openSync(abs, 'r');
  let n = 0;
  try {
    for (;;) {
      const r = fs.readSync(fd, groupBuf, at + n, size + 1 - n, null);
      if (r === 0) break;
      n += r;
      if (n > size) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (n <= size) return n;
  // It grew since the walk: take it whole.
  const content = fs.readFileSync(abs);
  groupRoom(at + content.length);
  content.copy(groupBuf, at);
  return content.length;
}

function putGroup({ files, known, claims }: PutArgs): GroupResult {
  const skip = knownSet(known);
  const members: GroupMember[] = [];
  let offset = 0;
  for (const f of files) {
    const n = readInto(f.abs, f.size, offset);
    const digest = sha256Hex(groupBuf.subarray(offset, offset + n));
    if (skip.has(digest)) {
      members.push({ digest, size: n, offset: -1 });
      continue;
    }
    if (!claim(claims, digest)) {
      members.push({ digest, size: n, offset: -1, dup: true });
      continue;
    }
    members.push({ digest, size: n, offset });
    offset += n;
  }
  if (members.every((m) => m.offset < 0)) {
    return { group: null, size: 0, stored: 0, written: false, members };
  }
  const all = groupBuf.subarray(0, offset);
  const group = sha256Hex(all);
  const existing = storedSize(group);
  if (existing >= 0) return { group, size: offset, stored: existing, written: false, members };
  const { parts, raw } = encode(all, '');
  const stored = writeBlob(group, parts);
  return { group, size: offset, stored, written: true, raw, members };
}

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

/** One file to write or link, as read back from a files wire. */
interface WireFile {
  readonly dest: string;
  readonly digest: string;
  readonly size: number;
  readonly mode: number;
  readonly mtimeMs: number | null;
}

/** A file of a write job: where in the blob it sits, and where it goes once written. */
interface Member extends WireFile {
  readonly id: number;
  readonly offset: number;
  readonly renameTo: string | null;
}

/**
 * Mtime and mode through the open file, then its [id, inode, mtimeMs] into done. A file made
 * with its mode (open's mode, less the umask) needs no chmod: the fstat tells.
 */
function settle(
  fd: number,
  m: { readonly id: number; readonly mode: number; readonly mtimeMs: number | null },
  done: number[],
): void {
  if (m.mtimeMs !== null) {
    const t = m.mtimeMs / 1000;
    fs.futimesSync(fd, t, t);
  }
  const st = fs.fstatSync(fd);
  if ((st.mode & 0o7777) !== m.mode) fs.fchmodSync(fd, m.mode);
  done.push(m.id, st.ino, st.mtimeMs);
}

function place(m: Member): void {
  if (m.renameTo !== null) renameInto(m.dest, m.renameTo);
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
  place(m);
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
  place(m);
}

/** Where rel (a validated manifest path or tmp name, '' for a file root) goes under base. */
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

async function writeBatch(w: WriteWire): Promise<number[]> {
  const names = w.rels.split('\0');
  const renames = w.renames.split('\0');
  const done: number[] = [];
  for (let j = 0; j + 1 < w.starts.length; j++) {
    const members: Member[] = [];
    for (let i = w.starts[j] as number; i < (w.starts[j + 1] as number); i++) {
      members.push({
        ...fileAt(w, names, i),
        id: w.ids[i] as number,
        offset: w.offsets[i] as number,
        renameTo: renames[i] || null,
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

let crossDevice = false;

/** A file to link from its unpacked copy `src`, which has the file's mode less write (`umode`). */
interface LinkItem extends WireFile {
  readonly src: string;
  readonly umode: number;
}

function intact(st: fs.Stats, it: LinkItem): boolean {
  return (
    st.isFile() &&
    st.size === it.size &&
    (st.mode & 0o777) === it.umode &&
    st.mtimeMs === UNPACKED_MTIME_MS
  );
}

/** [inode, mtimeMs] of the file made, or null when its unpacked copy is missing or changed. */
function linkOne(it: LinkItem): [number, number] | null {
  try {
    fs.linkSync(it.src, it.dest);
  } catch (err) {
    const code = codeOf(err);
    if (code === 'ENOENT') return null;
    if (code !== 'EXDEV') throw err;
    crossDevice = true; // the store is on another filesystem: copy instead
    return copyOne(it);
  }
  // The link shares the copy's inode: checking it checks the copy.
  const st = fs.lstatSync(it.dest);
  if (intact(st, it)) return [st.ino, st.mtimeMs];
  fs.unlinkSync(it.dest);
  fs.rmSync(it.src, { force: true });
  return null;
}

function copyOne(it: LinkItem): [number, number] | null {
  const src = fs.lstatSync(it.src, { throwIfNoEntry: false });
  if (src === undefined) return null;
  if (!intact(src, it)) {
    fs.rmSync(it.src, { force: true });
    return null;
  }
  fs.copyFileSync(it.src, it.dest, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
  const fd = fs.openSync(it.dest, 'r');
  try {
    const done: number[] = [];
    settle(fd, { id: 0, mode: it.mode, mtimeMs: it.mtimeMs }, done);
    return [done[1] as number, done[2] as number];
  } finally {
    fs.closeSync(fd);
  }
}

function linkBatch(w: LinkWire): Float64Array {
  const names = w.rels.split('\0');
  const out = new Float64Array(names.length * 2);
  for (let i = 0; i < names.length; i++) {
    const f = fileAt(w, names, i);
    // The unpacked copy: the content with the file's mode, read-only.
    const umode = f.mode & ~0o222;
    const d = f.digest;
    const src = unpackedPath(w.unpackedDir, d, umode);
    const it: LinkItem = { ...f, umode, src };
    const got = w.clone || crossDevice ? copyOne(it) : linkOne(it);
    out[i * 2] = got === null ? -1 : got[0];
    out[i * 2 + 1] = got === null ? 0 : got[1];
  }
  transfers.push(out.buffer);
  return out;
}

/** Buffers the current reply hands back to the main thread (moved, not copied). */
let transfers: ArrayBuffer[] = [];

function compressChunk({ data, out, length, name }: ChunkArgs): ChunkResult {
  const src = Buffer.from(data.buffer, data.byteOffset, length);
  const dst = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  let n = -1;
  if (worthCompressing(length, name)) {
    if (native !== null) {
      n = native.cctx.compress2(dst, src);
    } else {
      const frame = zlib.zstdCompressSync(src, { params: zparams });
      if (frame.length <= dst.length) n = frame.copy(dst);
    }
    if (n >= 0 && !keepsFrame(n, length)) n = -1;
  }
  const raw = n < 0;
  if (raw) {
    n = 0;
    for (const p of rawFrameParts(src)) {
      dst.set(p, n);
      n += p.length;
    }
  }
  transfers.push(data.buffer as ArrayBuffer, out.buffer as ArrayBuffer);
  return { data, out, length: n, raw };
}

/**
 * Lists the directories in paths and, depth first, the directories below them until about
 * budget entries are listed (DirListing). A directory appears after its parent; sub-directories
 * not reached are left to the caller.
 */
function listDirs({ paths, budget }: ListArgs): DirListing[] {
  const out: DirListing[] = [];
  const stack = paths.slice().reverse();
  let listed = 0;
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      const code = codeOf(err);
      if (code === 'ENOENT') {
        out.push({ dir, names: [], stats: new Float64Array(0), targets: [], missing: true });
        continue;
      }
      if (code === 'ENOTDIR') fail('changed', `${dir} changed while it was being saved`);
      throw err;
    }
    // UTF-16 order is byte order but for characters outside the BMP.
    names.sort();
    if (names.some((n) => /[\uD800-\uDFFF]/.test(n))) names.sort(compareBytes);
    const stats = new Float64Array(names.length * 5);
    const targets = new Array<string | null>(names.length).fill(null);
    const subdirs: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const abs = dir + path.sep + (names[i] as string);
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      if (st === undefined) continue;
      const kind = st.isFile() ? 1 : st.isDirectory() ? 2 : st.isSymbolicLink() ? 3 : 4;
      if (kind === 3) {
        try {
          targets[i] = fs.readlinkSync(abs);
        } catch (err) {
          const code = codeOf(err);
          if (code !== 'ENOENT' && code !== 'EINVAL') throw err;
          continue; // gone or replaced meanwhile: left out
        }
      }
      if (kind === 2) subdirs.push(abs);
      const o = i * 5;
      stats[o] = kind;
      stats[o + 1] = st.mode & 0o777;
      stats[o + 2] = st.size;
      stats[o + 3] = st.mtimeMs;
      stats[o + 4] = st.ino;
    }
    listed += names.length;
    out.push({ dir, names, stats, targets });
    transfers.push(stats.buffer);
    // Deeper only within the budget (the directories asked for are always listed).
    if (listed < budget) {
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i] as string);
    }
  }
  return out;
}

/**
 * Makes the directories, parents first; a missing parent is made on the way (0700). Each gets
 * its mode (modes[i]; -1 leaves it 0700), set exactly whatever the umask.
 */
function mkdirBatch({ paths, modes }: MkdirArgs): null {
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i] as string;
    try {
      fs.mkdirSync(p, 0o700);
    } catch (err) {
      const code = codeOf(err);
      if (code === 'ENOENT') fs.mkdirSync(p, { recursive: true, mode: 0o700 });
      else if (code !== 'EEXIST' || !fs.lstatSync(p).isDirectory()) throw err;
    }
    const mode = modes[i] as number;
    if (mode >= 0) fs.chmodSync(p, mode);
  }
  return null;
}

/** Each operation's implementation, checked against the protocol. */
const ops: { [K in StoreOp]: (args: ArgsOf<K>) => ResultOf<K> | Promise<ResultOf<K>> } = {
  putFiles,
  putGroup,
  compressChunk,
  listDirs,
  mkdirBatch,
  writeBatch,
  linkBatch,
};

/** Runs one request; its reply (typed by its op). */
async function perform<K extends StoreOp>(id: number, op: K, args: ArgsOf<K>): Promise<StoreReply> {
  const run = ops[op] as (a: ArgsOf<K>) => ResultOf<K> | Promise<ResultOf<K>>;
  const result = await run(args);
  return { type: 'done', id, op, result } as StoreReply;
}

const port = parentPort;
if (port === null) throw new Error('store-worker.js runs only as a worker thread (pool.ts)');
const ready: StoreReply = { type: 'ready', backend: native !== null ? 'zstd-napi' : 'node:zlib' };
port.postMessage(ready);

async function handle(msg: StoreRequest): Promise<void> {
  let reply: StoreReply;
  try {
    dirs = msg.args.dirs;
    transfers = [];
    reply = await perform(msg.id, msg.op, msg.args);
  } catch (err) {
    transfers = [];
    reply = {
      type: 'failed',
      id: msg.id,
      error: err instanceof Error ? err.message : String(err),
      kind: err instanceof OpFailure ? err.kind : 'io',
    };
  }
  port?.postMessage(reply, transfers);
}

// One job at a time, in arrival order: the pool sends the next before this one is answered, and
// an op that awaits must not interleave with another (they share scratch buffers).
let chain = Promise.resolve();
port.on('message', (msg: StoreRequest) => {
  chain = chain.then(() => handle(msg));
});
