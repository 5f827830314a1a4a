/**
 * The code the store's worker threads run, kept as a string and started with `eval: true`, so
 * that the bundled action (one file per entrypoint, made by @vercel/ncc) needs no second file
 * and the bundler never rewrites the worker's `require` calls. The worker loads zstd-napi's
 * binary from the path the main thread found (`workerData.binding`) and falls back to
 * `node:zlib` when there is none or it will not load.
 *
 * Operations (message `{ id, op, args }`, reply `{ id, ok, result | error, kind }`):
 *   putFiles  { files: [{ abs, size }], known: digests to skip, 32 bytes each }  -> one blob per file (files
 *               below STREAM_AT; larger ones are read on the main thread and their chunks
 *               come here through compressChunk)
 *   putGroup  { files: [{ abs, size }], known }   -> one group blob: the members' contents back to back
 *   compressChunk { data, out, length, name } -> one zstd frame of data[0, length) written into
 *               out (compressed, or raw blocks when that saves too little); both buffers come
 *               back (transferred) with { length, raw } (chunked.ts: large files)
 *   listDirs   { paths, budget } -> the listing of each directory in paths and, depth first, of
 *               the directories below them up to about budget entries: { dir, names (byte
 *               order), stats: Float64Array of five numbers per name from lstat: kind (0 gone,
 *               1 file, 2 dir, 3 symlink, 4 other), permission bits, size, mtimeMs, inode;
 *               targets: each symlink's target } or { dir, missing: true } (snapshot.ts's walk)
 *   mkdirBatch { paths, modes } -> null: the directories made, each then given modes[i] (-1:
 *               left 0700), a missing parent made first (0700)
 *   writeBatch a files wire (restore.ts's FilesWire: the files, a few strings and typed
 *               arrays) with the jobs (WriteWire: per blob, the range of files it holds, their
 *               offsets, and where each is renamed once written) -> verified files written
 *               from each blob; [id, inode, mtimeMs] of each file written, flat
 *   linkBatch  a files wire with { unpackedDir, clone } (restore.ts's LinkWire) -> each file
 *               linked (or copied, cloning where the filesystem can) from its unpacked copy,
 *               used only while that copy is intact; Float64Array [inode, mtimeMs] per file,
 *               inode -1 where the copy is missing or was changed (and is then removed)
 *
 * Everything inside is synchronous per item (two threads on two cores keep the CPU busy while
 * the other waits on I/O) except node:zlib's streaming restore of large blobs. Blobs are
 * written to tmp/ and renamed into place; a blob that exists already is not rewritten.
 */
export const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData, threadId } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const { pipeline } = require('node:stream/promises');
const { Transform } = require('node:stream');

const LEVEL = workerData.level;
const CHUNK = 4 * 1024 * 1024;
const RAW_BLOCK = 128 * 1024;
const MIN_SAVING = workerData.minSaving;
const RAW_HEADER = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]);
const STORED_AS_IS = /\.(gz|tgz|zip|jar|whl|zst|xz|txz|bz2|br|7z|rar|png|jpe?g|gif|webp|avif|woff2?|mp[34]|mkv|webm|ogg)$/i;

let napi = null;
if (workerData.binding) {
  try {
    napi = require(workerData.binding);
  } catch {
    napi = null;
  }
}
let cctx = null;
let dctx = null;
if (napi) {
  cctx = new napi.CCtx();
  cctx.setParameter(napi.CParameter.compressionLevel, LEVEL);
  cctx.setParameter(napi.CParameter.hashLog, workerData.hashLog);
  cctx.setParameter(napi.CParameter.chainLog, workerData.chainLog);
  dctx = new napi.DCtx();
}
const zparams = {
  [zlib.constants.ZSTD_c_compressionLevel]: LEVEL,
  [zlib.constants.ZSTD_c_hashLog]: workerData.hashLog,
  [zlib.constants.ZSTD_c_chainLog]: workerData.chainLog,
};

/**
 * Restored content is written at most this much per write(): on the machines measured, writes
 * of 2 MiB and more filled the page cache ~10x slower than writes of 1 MiB or less (126 MB in
 * ~300 ms against ~30 ms; the kernel gives large writes large folios, and fresh memory is slow
 * to touch there), and small writes cost nothing measurable.
 */
const WRITE_PIECE = 512 * 1024;

/** Writes all of buf to fd in pieces of at most WRITE_PIECE. */
function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off));
}

let dirs = { blobDir: '', tmpDir: '' };
let tmpSeq = 0;
function tmpName(hint) {
  return path.join(dirs.tmpDir, hint + '-' + process.pid + '-' + threadId + '-' + tmpSeq++);
}
function blobPath(digest) {
  return path.join(dirs.blobDir, digest.slice(0, 2), digest);
}
function storedSize(digest) {
  try {
    const st = fs.statSync(blobPath(digest));
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

// Scratch buffers, reused: fresh memory is slow to touch on these machines.
let scratch = Buffer.allocUnsafe(0);
function scratchOf(n) {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2, 1 << 20));
  return scratch;
}

function compress(buf) {
  if (napi) {
    const out = scratchOf(napi.compressBound(buf.length));
    const n = cctx.compress2(out, buf);
    return out.subarray(0, n);
  }
  return zlib.zstdCompressSync(buf, { params: zparams });
}

function rawBlockHeader(size, last) {
  const v = (size << 3) | (last ? 1 : 0);
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}
function rawParts(content) {
  const parts = [RAW_HEADER];
  if (content.length === 0) parts.push(rawBlockHeader(0, true));
  for (let off = 0; off < content.length; off += RAW_BLOCK) {
    const end = Math.min(content.length, off + RAW_BLOCK);
    parts.push(rawBlockHeader(end - off, end === content.length), content.subarray(off, end));
  }
  return parts;
}

/** Test hook (test-hooks.ts ENOSPC_AFTER_ENV): blob writes after the n-th fail as on a full disk. */
const enospcAfter = process.env.CLYDE_STORE_TEST_ENOSPC_AFTER;
let writesBeforeEnospc = /^\d+$/.test(enospcAfter || '') ? Number(enospcAfter) : Infinity;

/** Writes parts to tmp/ and renames them to the blob's place (unless it appeared meanwhile). */
function writeBlob(digest, parts) {
  if (writesBeforeEnospc-- <= 0) {
    const err = new Error('ENOSPC: no space left on device, write (injected)');
    err.code = 'ENOSPC';
    throw err;
  }
  const tmp = tmpName('blob');
  const fd = fs.openSync(tmp, 'wx', 0o444);
  let n = 0;
  try {
    for (const p of parts) {
      fs.writeSync(fd, p);
      n += p.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  renameInto(tmp, blobPath(digest));
  return n;
}

/** Renames a finished file to dest, making dest's directory only when it is missing. */
function renameInto(tmp, dest) {
  try {
    renameRetrying(tmp, dest);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    renameRetrying(tmp, dest);
  }
}

/** util/fsx.ts's rename, synchronous: on Windows EPERM/EACCES/EBUSY retried for up to 60 s. */
function renameRetrying(tmp, dest) {
  const start = Date.now();
  let pause = 0;
  for (;;) {
    try {
      fs.renameSync(tmp, dest);
      return;
    } catch (err) {
      const busy = err.code === 'EPERM' || err.code === 'EACCES' || err.code === 'EBUSY';
      if (process.platform !== 'win32' || !busy || Date.now() - start >= 60000) throw err;
      pause = Math.min(pause + 10, 100);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}

/** Compressed parts of content, or raw parts when compression saves too little. */
function encode(content, name) {
  if (content.length >= 64 && !STORED_AS_IS.test(name)) {
    const frame = compress(content);
    if (frame.length <= content.length * (1 - MIN_SAVING)) return { parts: [frame], raw: false };
  }
  return { parts: rawParts(content), raw: true };
}

function readWhole(abs) {
  return fs.readFileSync(abs);
}

/**
 * Claims content for this save in the save's table shared by every worker (a SharedArrayBuffer
 * of 64-bit slots, open addressing): false when another file of the save claimed the same
 * first 64 bits of digest first. The caller stores the content only when it holds the claim;
 * the main thread pairs each duplicate with its claimer by the full digest, and stores it
 * after all when none matches. A full table claims nothing (everything is stored).
 */
function claim(claims, digest) {
  if (!claims) return true;
  const tab = new BigInt64Array(claims);
  let key = BigInt.asIntN(64, BigInt('0x' + digest.slice(0, 16)));
  if (key === 0n) key = 1n;
  const mask = tab.length - 1;
  let i = Number(BigInt.asUintN(32, key)) & mask;
  for (let probe = 0; probe < 64; probe++, i = (i + 1) & mask) {
    const prev = Atomics.compareExchange(tab, i, 0n, key);
    if (prev === 0n) return true;
    if (prev === key) return false;
  }
  return true;
}

/** The digests in known (32 bytes each), as hex. */
function knownSet(known) {
  const out = new Set();
  if (!known || known.length === 0) return out;
  const hex = Buffer.from(known.buffer, known.byteOffset, known.byteLength).toString('hex');
  for (let i = 0; i < hex.length; i += 64) out.add(hex.slice(i, i + 64));
  return out;
}

async function putFiles({ files, known, claims }) {
  const skip = knownSet(known);
  const out = [];
  for (const f of files) {
    // Read into the reused buffer: fresh memory per file costs page faults and collections.
    const n = readInto(f.abs, f.size, 0);
    const content = groupBuf.subarray(0, n);
    const digest = crypto.createHash('sha256').update(content).digest('hex');
    if (skip.has(digest)) {
      out.push({ digest, size: content.length, stored: 0, written: false, raw: false, known: true });
      continue;
    }
    if (!claim(claims, digest)) {
      out.push({ digest, size: content.length, stored: 0, written: false, raw: false, dup: true });
      continue;
    }
    const existing = storedSize(digest);
    if (existing >= 0) {
      out.push({ digest, size: content.length, stored: existing, written: false, raw: false });
      continue;
    }
    const { parts, raw } = encode(content, f.abs);
    const stored = writeBlob(digest, parts);
    out.push({ digest, size: content.length, stored, written: true, raw });
  }
  return out;
}

// The members of a group are read straight into this buffer, back to back (reused).
let groupBuf = Buffer.allocUnsafe(0);
function groupRoom(n) {
  if (groupBuf.length >= n) return;
  const next = Buffer.allocUnsafe(Math.max(n, groupBuf.length * 2, 4 << 20));
  groupBuf.copy(next);
  groupBuf = next;
}

/** Reads the file (size bytes when walked) into groupBuf at offset at; returns its length. */
function readInto(abs, size, at) {
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
  const content = readWhole(abs);
  groupRoom(at + content.length);
  content.copy(groupBuf, at);
  return content.length;
}

async function putGroup({ files, known, claims }) {
  const skip = knownSet(known);
  const members = [];
  let offset = 0;
  for (const f of files) {
    const n = readInto(f.abs, f.size, offset);
    const digest = crypto.createHash('sha256').update(groupBuf.subarray(offset, offset + n)).digest('hex');
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
  const group = crypto.createHash('sha256').update(all).digest('hex');
  const existing = storedSize(group);
  if (existing >= 0) return { group, size: offset, stored: existing, written: false, members };
  const { parts, raw } = encode(all, '');
  const stored = writeBlob(group, parts);
  return { group, size: offset, stored, written: true, raw, members };
}

function fail(kind, message) {
  throw Object.assign(new Error(message), { kind });
}

function decodeWhole(frame, size, blob) {
  if (napi) {
    const out = scratchOf(Math.max(size, 1)).subarray(0, size);
    let n;
    try {
      n = dctx.decompress(out, frame);
    } catch (err) {
      if (/too small/i.test(String(err))) fail('size', 'blob ' + blob + ' holds more than ' + size + ' bytes');
      fail('corrupt', 'blob ' + blob + ': corrupt zstd frame: ' + err);
    }
    if (n !== size) fail('size', 'blob ' + blob + ' holds ' + n + ' bytes, expected ' + size);
    return out;
  }
  let out;
  try {
    out = zlib.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, size) });
  } catch (err) {
    if (err && err.code === 'ERR_BUFFER_TOO_LARGE') fail('size', 'blob ' + blob + ' holds more than ' + size + ' bytes');
    fail('corrupt', 'blob ' + blob + ': corrupt zstd frame: ' + err);
  }
  if (out.length !== size) fail('size', 'blob ' + blob + ' holds ' + out.length + ' bytes, expected ' + size);
  return out;
}

// Blob files are read into this buffer (reused, like scratch: fresh memory is slow to touch).
let frameBuf = Buffer.allocUnsafe(0);

/** The blob's stored bytes, in frameBuf (valid until the next call). */
function readBlobFile(blob) {
  let fd;
  try {
    fd = fs.openSync(blobPath(blob), 'r');
  } catch (err) {
    fail('missing', 'blob ' + blob + ' is missing from the store: ' + err);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (frameBuf.length < size + 1) frameBuf = Buffer.allocUnsafe(Math.max(size + 1, frameBuf.length * 2, 1 << 20));
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

/**
 * Mtime and mode through the open file, then its [id, inode, mtimeMs] into done. A file made
 * with its mode (open's mode, less the umask) needs no chmod: the fstat tells.
 */
function settle(fd, m, done) {
  if (m.mtimeMs !== null && m.mtimeMs !== undefined) {
    const t = m.mtimeMs / 1000;
    fs.futimesSync(fd, t, t);
  }
  const st = fs.fstatSync(fd);
  if ((st.mode & 0o7777) !== m.mode) fs.fchmodSync(fd, m.mode);
  done.push(m.id, st.ino, st.mtimeMs);
}

function place(m) {
  if (m.renameTo) renameInto(m.dest, m.renameTo);
}

function writeMember(m, content, done) {
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
async function writeLarge(blob, m, done) {
  const src = fs.openSync(blobPath(blob), 'r');
  const out = fs.openSync(m.dest, 'wx', 0o600);
  const hash = crypto.createHash('sha256');
  let total = 0;
  try {
    if (napi) {
      dctx.reset(napi.ResetDirective.sessionOnly);
      const inBuf = Buffer.allocUnsafe(CHUNK);
      const dst = Buffer.allocUnsafe(CHUNK);
      let pos = 0;
      let last = 1;
      for (;;) {
        const n = fs.readSync(src, inBuf, 0, CHUNK, pos);
        if (n === 0) break;
        pos += n;
        let s = inBuf.subarray(0, n);
        for (;;) {
          let r;
          try {
            r = dctx.decompressStream(dst, s);
          } catch (err) {
            fail('corrupt', 'blob ' + blob + ': corrupt zstd frame: ' + err);
          }
          const [ret, produced, consumed] = r;
          // (A call after the frame's end, with nothing in or out, answers a new frame's hint.)
          if (produced > 0 || consumed > 0) last = ret;
          if (produced > 0) {
            total += produced;
            if (total > m.size) fail('size', 'blob ' + blob + ' holds more than ' + m.size + ' bytes');
            const piece = dst.subarray(0, produced);
            hash.update(piece);
            writeAll(out, piece);
          }
          s = s.subarray(consumed);
          // Done with this chunk only when it is consumed and nothing more comes out.
          if (s.length === 0 && produced === 0) break;
        }
      }
      if (last !== 0) fail('corrupt', 'blob ' + blob + ': truncated zstd frame');
    } else {
      fs.closeSync(out);
      const tap = new Transform({
        transform(chunk, _enc, cb) {
          total += chunk.length;
          if (total > m.size) return cb(Object.assign(new Error('blob ' + blob + ' holds more than ' + m.size + ' bytes'), { kind: 'size' }));
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(
          fs.createReadStream(blobPath(blob), { highWaterMark: 1 << 20, fd: src, autoClose: false }),
          zlib.createZstdDecompress({ chunkSize: 256 * 1024 }),
          tap,
          fs.createWriteStream(m.dest, { flags: 'w', mode: 0o600 }),
        );
      } catch (err) {
        if (err && err.kind) throw err;
        fail('corrupt', 'blob ' + blob + ': corrupt zstd frame: ' + err);
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
  if (total !== m.size) fail('size', 'blob ' + blob + ' holds ' + total + ' bytes, expected ' + m.size);
  if (hash.digest('hex') !== m.digest) fail('corrupt', 'blob ' + blob + ': content does not match its digest');
  const fd = fs.openSync(m.dest, 'r');
  try {
    settle(fd, m, done);
  } finally {
    fs.closeSync(fd);
  }
  place(m);
}

/** Where rel (a validated manifest path or tmp name, '' for a file root) goes under base. */
function underRoot(base, rel) {
  if (rel === '') return base;
  return base + path.sep + (path.sep === '/' ? rel : rel.replaceAll('/', path.sep));
}

/** File i of a files wire (restore.ts's FilesWire; names: its rels, split). */
function fileAt(w, names, i) {
  const mtime = w.mtimes[i];
  return {
    dest: underRoot(w.bases[w.base[i]], names[i]),
    digest: w.digests.slice(i * 64, i * 64 + 64),
    size: w.sizes[i],
    mode: w.modes[i],
    mtimeMs: Number.isNaN(mtime) ? null : mtime,
  };
}

async function write({ blob, blobSize, stream, members }, done) {
  if (stream) {
    await writeLarge(blob, members[0], done);
    return;
  }
  const content = decodeWhole(readBlobFile(blob), blobSize, blob);
  for (const m of members) {
    const slice = content.subarray(m.offset, m.offset + m.size);
    let why = null;
    if (m.offset + m.size > content.length) why = ' is shorter than its members';
    else if (crypto.createHash('sha256').update(slice).digest('hex') !== m.digest) {
      why = ': content does not match its digest';
    }
    if (why === null) continue;
    // A group whose whole content still hashes to its name is sound: the entry placed the
    // file wrongly (a damaged artifact), and only the entry is at fault.
    if (blob !== m.digest && crypto.createHash('sha256').update(content).digest('hex') === blob) {
      fail('size', 'blob ' + blob + ' does not hold ' + m.digest + ' where its entry says');
    }
    fail('corrupt', 'blob ' + blob + why);
  }
  for (const m of members) writeMember(m, content.subarray(m.offset, m.offset + m.size), done);
}

async function writeBatch(w) {
  const names = w.rels.split('\0');
  const renames = w.renames.split('\0');
  const done = [];
  for (let j = 0; j + 1 < w.starts.length; j++) {
    const members = [];
    for (let i = w.starts[j]; i < w.starts[j + 1]; i++) {
      const m = fileAt(w, names, i);
      m.id = w.ids[i];
      m.offset = w.offsets[i];
      m.renameTo = renames[i] || null;
      members.push(m);
    }
    const blob = w.blobs.slice(j * 64, j * 64 + 64);
    await write({ blob, blobSize: w.blobSizes[j], stream: w.streams[j] === 1, members }, done);
  }
  return done;
}

const UNPACKED_MTIME_MS = workerData.unpackedMtimeMs;
let crossDevice = false;

function intact(st, it) {
  return st.isFile() && st.size === it.size && (st.mode & 0o777) === it.umode && st.mtimeMs === UNPACKED_MTIME_MS;
}

function linkOne(it) {
  try {
    fs.linkSync(it.src, it.dest);
  } catch (err) {
    if (err.code === 'ENOENT') return 0;
    if (err.code !== 'EXDEV') throw err;
    crossDevice = true; // the store is on another filesystem: copy instead
    return copyOne(it);
  }
  // The link shares the copy's inode: checking it checks the copy.
  const st = fs.lstatSync(it.dest);
  if (intact(st, it)) return [st.ino, st.mtimeMs];
  fs.unlinkSync(it.dest);
  fs.rmSync(it.src, { force: true });
  return 0;
}

function copyOne(it) {
  const src = fs.lstatSync(it.src, { throwIfNoEntry: false });
  if (src === undefined) return 0;
  if (!intact(src, it)) {
    fs.rmSync(it.src, { force: true });
    return 0;
  }
  fs.copyFileSync(it.src, it.dest, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
  const fd = fs.openSync(it.dest, 'r');
  try {
    const done = [];
    settle(fd, { id: 0, mode: it.mode, mtimeMs: it.mtimeMs }, done);
    return [done[1], done[2]];
  } finally {
    fs.closeSync(fd);
  }
}

function linkBatch(w) {
  const names = w.rels.split('\0');
  const out = new Float64Array(names.length * 2);
  for (let i = 0; i < names.length; i++) {
    const it = fileAt(w, names, i);
    // The unpacked copy: the content with the file's mode, read-only.
    it.umode = it.mode & ~0o222;
    const d = it.digest;
    it.src = w.unpackedDir + path.sep + d.slice(0, 2) + path.sep + d + '.' + it.umode.toString(8);
    const got = w.clone || crossDevice ? copyOne(it) : linkOne(it);
    out[i * 2] = got === 0 ? -1 : got[0];
    out[i * 2 + 1] = got === 0 ? 0 : got[1];
  }
  transfers = [out.buffer];
  return out;
}

/** Buffers the current reply hands back to the main thread (moved, not copied). */
let transfers = [];

function compressChunk({ data, out, length, name }) {
  const asIs = STORED_AS_IS.test(name);
  const src = Buffer.from(data.buffer, data.byteOffset, length);
  const dst = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  let n = -1;
  if (!asIs && length >= 64) {
    if (napi) {
      n = cctx.compress2(dst, src);
    } else {
      const frame = zlib.zstdCompressSync(src, { params: zparams });
      if (frame.length <= dst.length) n = frame.copy(dst);
    }
    if (n > length * (1 - MIN_SAVING)) n = -1;
  }
  const raw = n < 0;
  if (raw) {
    n = 0;
    for (const p of rawParts(src)) n += p.copy(dst, n);
  }
  transfers = [data.buffer, out.buffer];
  return { data, out, length: n, raw };
}

function byteOrder(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Lists the directories in paths and, depth first, the directories below them until about
 * budget entries are listed: per directory { dir, names (byte order), stats: five numbers per
 * name from lstat [kind (0 gone, 1 file, 2 dir, 3 symlink, 4 other), permission bits, size,
 * mtimeMs, inode], targets: each symlink's target }, or { dir, missing: true } when it is gone.
 * A directory appears after its parent; sub-directories not reached are left to the caller.
 */
function listDirs({ paths, budget }) {
  const out = [];
  const stack = paths.slice().reverse();
  let listed = 0;
  while (stack.length > 0) {
    const dir = stack.pop();
    let names;
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      if (err.code === 'ENOENT') {
        out.push({ dir, names: [], stats: new Float64Array(0), targets: [], missing: true });
        continue;
      }
      if (err.code === 'ENOTDIR') fail('changed', dir + ' changed while it was being saved');
      throw err;
    }
    // UTF-16 order is byte order but for characters outside the BMP.
    names.sort();
    if (names.some((n) => /[\uD800-\uDFFF]/.test(n))) names.sort(byteOrder);
    const stats = new Float64Array(names.length * 5);
    const targets = new Array(names.length).fill(null);
    const subdirs = [];
    for (let i = 0; i < names.length; i++) {
      const abs = dir + path.sep + names[i];
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      if (st === undefined) continue;
      const kind = st.isFile() ? 1 : st.isDirectory() ? 2 : st.isSymbolicLink() ? 3 : 4;
      if (kind === 3) {
        try {
          targets[i] = fs.readlinkSync(abs);
        } catch (err) {
          if (err.code !== 'ENOENT' && err.code !== 'EINVAL') throw err;
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
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
    }
  }
  return out;
}

/**
 * Makes the directories, parents first; a missing parent is made on the way (0700). Each gets
 * its mode (modes[i]; -1 leaves it 0700), set exactly whatever the umask.
 */
function mkdirBatch({ paths, modes }) {
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i];
    try {
      fs.mkdirSync(p, 0o700);
    } catch (err) {
      if (err.code === 'ENOENT') fs.mkdirSync(p, { recursive: true, mode: 0o700 });
      else if (err.code !== 'EEXIST' || !fs.lstatSync(p).isDirectory()) throw err;
    }
    if (modes[i] >= 0) fs.chmodSync(p, modes[i]);
  }
  return null;
}

const ops = { putFiles, putGroup, compressChunk, listDirs, mkdirBatch, writeBatch, linkBatch };
parentPort.postMessage({ ready: true, backend: napi ? 'zstd-napi' : 'node:zlib' });
// One job at a time, in arrival order: the pool sends the next before this one is answered, and
// an op that awaits must not interleave with another (they share scratch buffers).
let chain = Promise.resolve();
parentPort.on('message', (msg) => {
  chain = chain.then(() => handle(msg));
});
async function handle(msg) {
  try {
    dirs = msg.args.dirs;
    transfers = [];
    const result = await ops[msg.op](msg.args);
    parentPort.postMessage({ id: msg.id, ok: true, result }, transfers);
  } catch (err) {
    parentPort.postMessage({
      id: msg.id,
      ok: false,
      error: err && err.message ? err.message : String(err),
      kind: (err && err.kind) || 'io',
    });
  }
}
`;
