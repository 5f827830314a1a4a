import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
;// CONCATENATED MODULE: external "node:path"
const external_node_path_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");
;// CONCATENATED MODULE: external "node:worker_threads"
const external_node_worker_threads_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");
;// CONCATENATED MODULE: external "node:zlib"
const external_node_zlib_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:zlib");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: ./build/src/util/bytes.js

/**
 * Byte-order (UTF-8) comparison of strings, without allocating in the common case: UTF-16 code
 * units sort as UTF-8 bytes below the surrogates; where a surrogate or U+E000..U+FFFF decides
 * (or a string ends in a high surrogate), the UTF-8 bytes are compared.
 */
function compareBytes(a, b) {
    if (a === b)
        return 0;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
        const x = a.charCodeAt(i);
        const y = b.charCodeAt(i);
        if (x === y)
            continue;
        if (x < 0xd800 && y < 0xd800)
            return x < y ? -1 : 1;
        return compareUtf8(a, b);
    }
    const last = n > 0 ? a.charCodeAt(n - 1) : 0;
    if (last >= 0xd800 && last < 0xdc00)
        return compareUtf8(a, b);
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
function compareUtf8(a, b) {
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
function sortBytes(values) {
    return [...values].sort(compareBytes);
}
function sha256(data) {
    return createHash('sha256').update(data).digest('hex');
}
/** Forward slashes, no leading './', no trailing slash. */
function toPosix(p) {
    let s = p.replace(/\\/g, '/');
    while (s.startsWith('./'))
        s = s.slice(2);
    if (s.length > 1 && s.endsWith('/'))
        s = s.slice(0, -1);
    return s;
}
/** 1536 -> '1.5 KiB'. */
function formatBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = 0;
    while (Math.abs(v) >= 1024 && u < units.length - 1) {
        v /= 1024;
        u++;
    }
    return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
//# sourceMappingURL=bytes.js.map
;// CONCATENATED MODULE: ./build/src/store/codec-rules.js
/**
 * The compression rules every writer of blobs follows: the store's workers (store-worker.ts),
 * which do all compressing and decoding, and the tests that build frames by hand. Pure: no
 * backend is loaded here.
 */
const LEVEL = 3;
/**
 * Level 3 with smaller match tables than its own (hash 2^17, chain 2^16): these fit a core's L2
 * cache, which makes compression about 7% faster for about 1% more bytes on the store
 * benchmark's tree (measured with zstd-napi, both backends use the same library).
 */
const HASH_LOG = 16;
const CHAIN_LOG = 15;
/** A compressed blob must save at least this fraction, or the content is stored as it is. */
const MIN_SAVING = 0.03;
/** Content shorter than this is stored as it is: a frame header costs more than it saves. */
const MIN_COMPRESS_BYTES = 64;
/** Names whose content is compressed already: stored as it is, without trying. */
const STORED_AS_IS = /\.(gz|tgz|zip|jar|whl|zst|xz|txz|bz2|br|7z|rar|png|jpe?g|gif|webp|avif|woff2?|mp[34]|mkv|webm|ogg)$/i;
/** Whether content of `length` bytes named `name` ('' for none) is worth compressing at all. */
function worthCompressing(length, name) {
    return length >= MIN_COMPRESS_BYTES && !STORED_AS_IS.test(name);
}
/**
 * Room for the frame of `length` bytes of content, compressed (zstd's bound) or in raw blocks,
 * with margin: the output buffer `compressChunk` writes into.
 */
function frameRoom(length) {
    return length + (length >> 7) + 1024;
}
/** Whether a compressed frame of `frameLength` bytes saves enough over `length` bytes of content. */
function keepsFrame(frameLength, length) {
    return frameLength <= length * (1 - MIN_SAVING);
}
/**
 * Incompressible content is stored "as it is" inside a zstd frame made of raw blocks: every
 * zstd decoder reads it (so blobs stay plain zstd frames, and pack export, import and
 * verification need no marker), and decoding it is a memory copy. Header: magic, a frame
 * descriptor with no content size, no checksum and no dictionary, and a 128 KiB window.
 */
const RAW_FRAME_HEADER = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]);
const RAW_BLOCK_MAX = 128 * 1024;
function rawBlockHeader(size, last) {
    const v = (size << 3) | (last ? 1 : 0); // block type 0 (raw) in bits 1-2
    return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}
/** `content` as the pieces of a zstd frame of raw (uncompressed) blocks, in order. */
function rawFrameParts(content) {
    const parts = [RAW_FRAME_HEADER];
    if (content.length === 0)
        parts.push(rawBlockHeader(0, true));
    for (let off = 0; off < content.length; off += RAW_BLOCK_MAX) {
        const end = Math.min(content.length, off + RAW_BLOCK_MAX);
        parts.push(rawBlockHeader(end - off, end === content.length), content.subarray(off, end));
    }
    return parts;
}
//# sourceMappingURL=codec-rules.js.map
;// CONCATENATED MODULE: ./build/src/store/blob-layout.js
/**
 * The blob layout, in one place: where a blob lives, and how it gets there. Every reader and
 * writer of blobs (blobs.ts, chunked.ts, the store's rooms, snapshot.ts, restore.ts and the
 * store worker) builds its paths here.
 *
 *   <root>/blobs/<aa>/<sha256>           a blob: one or more zstd frames (blobs.ts)
 *
 * `<aa>` is the digest's first two hex digits (256 shards keep directories small). This module
 * runs on the main thread and in the workers alike: it imports nothing of the store.
 */


/** A blob's name: the sha256 of its content, in lower-case hex. */
const BLOB_NAME = /^[0-9a-f]{64}$/;
/** The file of blob `digest` (not checked: callers hold a digest they computed or checked). */
function blobPath(blobDir, digest) {
    return external_node_path_namespaceObject.join(blobDir, digest.slice(0, 2), digest);
}
/** The size of the blob file at `file`, or undefined when there is none. */
function fileSizeSync(file) {
    try {
        const st = external_node_fs_namespaceObject.statSync(file);
        return st.isFile() ? st.size : undefined;
    }
    catch {
        return undefined;
    }
}
/** Blob writes this thread has made (for `BlobDirs.enospcAfter`). */
let writes = 0;
/**
 * Writes blob `digest` from the frame `parts`, or adopts the one already there. This is the one
 * way a blob comes to be, and content addressing keeps it simple: a blob's name is the sha256 of
 * its content, so any complete file at its path holds what this write would.
 *
 * 1. Adopt: a blob already at the path (another save, process or worker wrote it first) is kept
 *    as it is and its size returned; nothing is written. Callers that compress check this first
 *    (`fileSizeSync`), so stored content costs no compression either.
 * 2. Write: the frame goes to a temp file of this writer's own in tmp/ (`tmp`: same filesystem
 *    as the blobs, so the rename below is atomic), created exclusively and read-only.
 * 3. Place (`renameInto`): the temp file is renamed over the blob's path, so a reader sees no blob
 *    or a whole one, never a part. Two writers racing both rename: the second replaces the
 *    first's file with the same bytes, which no reader can tell apart.
 *
 * On any failure (a full disk) the temp file is removed and the error thrown; nothing is left
 * half-written.
 */
function writeOrAdopt(dirs, digest, parts, tmp) {
    const dest = blobPath(dirs.blobDir, digest);
    const existing = fileSizeSync(dest);
    if (existing !== undefined)
        return { stored: existing, written: false };
    injectedFault(dirs);
    let stored = 0;
    try {
        const fd = external_node_fs_namespaceObject.openSync(tmp, 'wx', 0o444);
        try {
            for (const p of parts)
                stored += writeAll(fd, p);
        }
        finally {
            external_node_fs_namespaceObject.closeSync(fd);
        }
        renameInto(tmp, dest);
    }
    catch (err) {
        external_node_fs_namespaceObject.rmSync(tmp, { force: true });
        throw err;
    }
    return { stored, written: true };
}
/**
 * Fault injection (tests): throws ENOSPC, as a full disk would, once this thread has written
 * `dirs.enospcAfter` blobs. Called where every blob write starts (here, and in chunked.ts).
 */
function injectedFault(dirs) {
    if (dirs.enospcAfter !== undefined && writes++ >= dirs.enospcAfter) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write (injected)'), {
            code: 'ENOSPC',
        });
    }
}
/**
 * Renames a finished temp file to `dest`, making dest's directory only when the rename finds it
 * missing: step 3 of `writeOrAdopt`, and of a blob streamed to tmp/ elsewhere (chunked.ts).
 */
function renameInto(tmp, dest) {
    try {
        renameRetrying(tmp, dest);
    }
    catch (err) {
        if (err.code !== 'ENOENT')
            throw err;
        external_node_fs_namespaceObject.mkdirSync(external_node_path_namespaceObject.dirname(dest), { recursive: true });
        renameRetrying(tmp, dest);
    }
}
/**
 * Large writes go in pieces: one write of a large buffer costs far more than the same bytes in
 * pieces here (the kernel gives large writes large folios, slow to touch on these machines).
 */
const WRITE_PIECE = 512 * 1024;
function writeAll(fd, buf) {
    let off = 0;
    while (off < buf.length) {
        off += external_node_fs_namespaceObject.writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off));
    }
    return off;
}
/** util/fsx.ts's rename, synchronous: on Windows EPERM/EACCES/EBUSY retried for up to 60 s. */
function renameRetrying(tmp, dest) {
    const start = Date.now();
    let pause = 0;
    for (;;) {
        try {
            external_node_fs_namespaceObject.renameSync(tmp, dest);
            return;
        }
        catch (err) {
            const code = err.code;
            const busy = code === 'EPERM' || code === 'EACCES' || code === 'EBUSY';
            if (process.platform !== 'win32' || !busy || Date.now() - start >= 60000)
                throw err;
            pause = Math.min(pause + 10, 100);
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
        }
    }
}
/** [shard, name] of every name one level below the shards of `dir` (none when it is missing). */
async function shardedNames(dir) {
    const out = [];
    let shards;
    try {
        shards = await fs.promises.readdir(dir);
    }
    catch {
        return out;
    }
    for (const shard of shards) {
        try {
            for (const name of await fs.promises.readdir(path.join(dir, shard)))
                out.push([shard, name]);
        }
        catch {
            // not a directory, or gone meanwhile
        }
    }
    return out;
}
//# sourceMappingURL=blob-layout.js.map
;// CONCATENATED MODULE: ./build/src/store/worker-protocol.js
/** Files at least this large are streamed in 4 MiB chunks, never read into one buffer. */
const STREAM_AT = 16 * 1024 * 1024;
/**
 * The claim table's key for a digest (hex): its first 64 bits, never 0 (0 marks a free slot);
 * its first slot is the key's low 32 bits under the table's mask. The main thread fills the
 * table ahead of a save (snapshot.ts) and the workers claim in it; both use this.
 */
function claimKey(digest) {
    const key = BigInt.asIntN(64, BigInt(`0x${digest.slice(0, 16)}`));
    return key === 0n ? 1n : key;
}
function claimSlot(key, mask) {
    return Number(BigInt.asUintN(32, key)) & mask;
}
//# sourceMappingURL=worker-protocol.js.map
;// CONCATENATED MODULE: ./build/src/store/worker-core.js
/**
 * What the store worker's operations share (store-worker.ts, worker-write.ts, worker-decode.ts): the zstd
 * binding or node:zlib's parameters, the failure kinds the main thread tells apart, the current
 * job's directories and transfers, scratch buffers, and small I/O helpers. Imported only by the
 * worker thread's modules.
 */







const CHUNK = 4 * 1024 * 1024;
/** A failure the main thread tells apart by kind (pool.ts WorkerOpError). */
class OpFailure extends Error {
    kind;
    constructor(kind, message) {
        super(message);
        this.kind = kind;
    }
}
function fail(kind, message) {
    throw new OpFailure(kind, message);
}
function codeOf(err) {
    const code = err?.code;
    return typeof code === 'string' ? code : undefined;
}
/**
 * The native binary, loaded by its path as `require` would (process.dlopen): the bundler
 * leaves this alone, so the worker bundle carries no copy of zstd-napi of its own.
 */
function loadBinding(file) {
    if (file === undefined)
        return null;
    try {
        const mod = { exports: {} };
        process.dlopen(mod, file);
        return mod.exports;
    }
    catch {
        return null;
    }
}
const data = external_node_worker_threads_namespaceObject.workerData;
const napi = loadBinding(data.binding);
const worker_core_native = napi === null
    ? null
    : (() => {
        const cctx = new napi.CCtx();
        cctx.setParameter(napi.CParameter.compressionLevel, LEVEL);
        cctx.setParameter(napi.CParameter.hashLog, HASH_LOG);
        cctx.setParameter(napi.CParameter.chainLog, CHAIN_LOG);
        return { cctx, dctx: new napi.DCtx() };
    })();
const zparams = {
    [external_node_zlib_namespaceObject.constants.ZSTD_c_compressionLevel]: LEVEL,
    [external_node_zlib_namespaceObject.constants.ZSTD_c_hashLog]: HASH_LOG,
    [external_node_zlib_namespaceObject.constants.ZSTD_c_chainLog]: CHAIN_LOG,
};
/**
 * Restored content is written at most this much per write(): on the machines measured, writes
 * of 2 MiB and more filled the page cache ~10x slower than writes of 1 MiB or less (126 MB in
 * ~300 ms against ~30 ms; the kernel gives large writes large folios, and fresh memory is slow
 * to touch there), and small writes cost nothing measurable.
 */
const worker_core_WRITE_PIECE = 512 * 1024;
/** Writes all of buf to fd in pieces of at most WRITE_PIECE. */
function worker_core_writeAll(fd, buf) {
    let off = 0;
    while (off < buf.length) {
        off += external_node_fs_namespaceObject.writeSync(fd, buf, off, Math.min(worker_core_WRITE_PIECE, buf.length - off));
    }
}
/** The current job's directories and the buffers its reply hands back (moved, not copied). */
const job = {
    dirs: { blobDir: '', tmpDir: '' },
    transfers: [],
};
let tmpSeq = 0;
function tmpName(hint) {
    return external_node_path_namespaceObject.join(job.dirs.tmpDir, `${hint}-${process.pid}-${external_node_worker_threads_namespaceObject.threadId}-${tmpSeq++}`);
}
function worker_core_blobPath(digest) {
    return blobPath(job.dirs.blobDir, digest);
}
function storedSize(digest) {
    try {
        const st = external_node_fs_namespaceObject.statSync(worker_core_blobPath(digest));
        return st.isFile() ? st.size : -1;
    }
    catch {
        return -1;
    }
}
function sha256Hex(data) {
    return external_node_crypto_namespaceObject.createHash('sha256').update(data).digest('hex');
}
// Scratch buffers, reused: fresh memory is slow to touch on these machines.
let scratch = Buffer.allocUnsafe(0);
function scratchOf(n) {
    if (scratch.length < n)
        scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2, 1 << 20));
    return scratch;
}
//# sourceMappingURL=worker-core.js.map
;// CONCATENATED MODULE: external "node:stream"
const external_node_stream_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream");
;// CONCATENATED MODULE: external "node:stream/promises"
const promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream/promises");
;// CONCATENATED MODULE: ./build/src/store/worker-decode.js
/**
 * The store worker's zstd decoding, shared by restore (worker-write.ts `writeBatch`) and
 * verification (`verifyBlobs`): a blob's frame read from its file in the store or from a range
 * of a pack, decoded whole (small content, into a reused buffer of exactly the size the caller
 * expects) or streamed in bounded pieces. Neither ever produces more than the expected size: a
 * frame that holds more fails ('size') as soon as it does, so a hostile frame cannot make us
 * allocate what it claims (the decoders also refuse windows above zstd's default 128 MiB).
 */





/** Content of `size` bytes (known to be small) decoded from `frame` into a reused buffer. */
function decodeWhole(frame, size, blob) {
    if (worker_core_native !== null) {
        const out = scratchOf(Math.max(size, 1)).subarray(0, size);
        let n;
        try {
            n = worker_core_native.dctx.decompress(out, frame);
        }
        catch (err) {
            if (/too small/i.test(String(err)))
                fail('size', `blob ${blob} holds more than ${size} bytes`);
            fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
        }
        if (n !== size)
            fail('size', `blob ${blob} holds ${n} bytes, expected ${size}`);
        return out;
    }
    let out;
    try {
        out = external_node_zlib_namespaceObject.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, size) });
    }
    catch (err) {
        if (codeOf(err) === 'ERR_BUFFER_TOO_LARGE') {
            fail('size', `blob ${blob} holds more than ${size} bytes`);
        }
        fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
    }
    if (out.length !== size)
        fail('size', `blob ${blob} holds ${out.length} bytes, expected ${size}`);
    return out;
}
// Blob files are read into this buffer (reused, like scratch: fresh memory is slow to touch).
let frameBuf = Buffer.allocUnsafe(0);
function openFrame(blob, at) {
    try {
        return external_node_fs_namespaceObject.openSync(at.file, 'r');
    }
    catch (err) {
        fail('missing', `blob ${blob} is missing from the store: ${err}`);
    }
}
/** The blob's stored bytes, in frameBuf (valid until the next call). */
function readBlobFile(blob, at) {
    const fd = openFrame(blob, at);
    try {
        if (at.length !== undefined) {
            if (frameBuf.length < at.length) {
                frameBuf = Buffer.allocUnsafe(Math.max(at.length, frameBuf.length * 2, 1 << 20));
            }
            let n = 0;
            while (n < at.length) {
                const r = external_node_fs_namespaceObject.readSync(fd, frameBuf, n, at.length - n, at.offset + n);
                if (r === 0)
                    fail('corrupt', `blob ${blob}: the pack ends inside its frame`);
                n += r;
            }
            return frameBuf.subarray(0, n);
        }
        const size = external_node_fs_namespaceObject.fstatSync(fd).size;
        if (frameBuf.length < size + 1) {
            frameBuf = Buffer.allocUnsafe(Math.max(size + 1, frameBuf.length * 2, 1 << 20));
        }
        let n = 0;
        for (;;) {
            const r = external_node_fs_namespaceObject.readSync(fd, frameBuf, n, frameBuf.length - n, null);
            if (r === 0)
                break;
            n += r;
            if (n === frameBuf.length) {
                // It grew since the fstat: room for the rest.
                const next = Buffer.allocUnsafe(frameBuf.length * 2);
                frameBuf.copy(next);
                frameBuf = next;
            }
        }
        return frameBuf.subarray(0, n);
    }
    finally {
        external_node_fs_namespaceObject.closeSync(fd);
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
async function decodeStream(blob, at, size, onPiece) {
    const src = openFrame(blob, at);
    const end = at.length === undefined ? Infinity : at.offset + at.length;
    let total = 0;
    const take = (piece) => {
        total += piece.length;
        if (total > size)
            fail('size', `blob ${blob} holds more than ${size} bytes`);
        onPiece(piece);
    };
    try {
        if (napi !== null && worker_core_native !== null) {
            const dctx = worker_core_native.dctx;
            dctx.reset(napi.ResetDirective.sessionOnly);
            const inBuf = Buffer.allocUnsafe(CHUNK);
            const dst = Buffer.allocUnsafe(CHUNK);
            let pos = at.offset;
            let last = 1;
            for (;;) {
                const n = external_node_fs_namespaceObject.readSync(src, inBuf, 0, Math.min(CHUNK, end - pos), pos);
                if (n === 0)
                    break;
                pos += n;
                let s = inBuf.subarray(0, n);
                for (;;) {
                    let r;
                    try {
                        r = dctx.decompressStream(dst, s);
                    }
                    catch (err) {
                        fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err}`);
                    }
                    const [ret, produced, consumed] = r;
                    // (A call after the frame's end, with nothing in or out, answers a new frame's hint.)
                    if (produced > 0 || consumed > 0)
                        last = ret;
                    if (produced > 0)
                        take(dst.subarray(0, produced));
                    s = s.subarray(consumed);
                    // Done with this chunk only when it is consumed and nothing more comes out.
                    if (s.length === 0 && produced === 0)
                        break;
                }
            }
            if (last !== 0)
                fail('corrupt', `blob ${blob}: truncated zstd frame`);
        }
        else {
            await nodeDecode(blob, rangeOf(src, at.offset, end), take);
        }
    }
    finally {
        external_node_fs_namespaceObject.closeSync(src);
    }
    if (total !== size)
        fail('size', `blob ${blob} holds ${total} bytes, expected ${size}`);
    return total;
}
/** The bytes of fd from `start` up to `end` (Infinity: its end), in fresh 1 MiB buffers. */
function* rangeOf(fd, start, end) {
    let pos = start;
    while (pos < end) {
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, end - pos));
        const n = external_node_fs_namespaceObject.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0)
            return;
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
async function nodeDecode(blob, source, take) {
    let ours;
    const scanner = new FrameScanner(blob);
    let pending;
    const next = () => {
        if (pending !== undefined) {
            const p = pending;
            pending = undefined;
            return p;
        }
        const r = source.next();
        return r.done === true ? undefined : r.value;
    };
    // The bytes of one frame (the decoder reports a frame cut short).
    const frame = function* () {
        for (;;) {
            const chunk = next();
            if (chunk === undefined)
                return;
            let scanned;
            try {
                scanned = scanner.scan(chunk);
            }
            catch (err) {
                ours ??= err;
                throw err;
            }
            if (scanned.used < chunk.length)
                pending = chunk.subarray(scanned.used);
            if (scanned.used > 0)
                yield chunk.subarray(0, scanned.used);
            if (scanned.done)
                return;
        }
    };
    let frames = 0;
    try {
        for (;;) {
            const first = next();
            if (first === undefined)
                break;
            if (first.length === 0)
                continue;
            pending = first;
            frames++;
            await (0,promises_namespaceObject.pipeline)(external_node_stream_namespaceObject.Readable.from(frame(), { objectMode: false, highWaterMark: PIECE_BYTES }), external_node_zlib_namespaceObject.createZstdDecompress({ chunkSize: PIECE_BYTES }), async (out) => {
                for await (const piece of out) {
                    try {
                        take(piece);
                    }
                    catch (err) {
                        ours ??= err;
                        throw err;
                    }
                }
            });
            if (!scanner.between)
                fail('corrupt', `blob ${blob}: truncated zstd frame`);
        }
    }
    catch (err) {
        if (ours !== undefined)
            throw ours;
        if (err instanceof OpFailure)
            throw err;
        fail('corrupt', `blob ${blob}: corrupt zstd frame: ${err instanceof Error ? err.message : err}`);
    }
    if (frames === 0)
        fail('corrupt', `blob ${blob}: corrupt zstd frame: it is empty`);
}
/**
 * Finds where each zstd frame of a stream ends, by walking the frame and block headers (their
 * sizes say how far to skip). Skippable frames are frames too; anything else is refused.
 */
class FrameScanner {
    blob;
    state = 'magic';
    acc = [];
    skipLeft = 0;
    /** What follows the bytes being skipped: a block header, or the frame's end. */
    thenEnd = false;
    checksum = false;
    constructor(blob) {
        this.blob = blob;
    }
    /** How many bytes of `chunk` belong to the current frame, and whether it ends with them. */
    scan(chunk) {
        let i = 0;
        while (i < chunk.length) {
            if (this.state === 'skip') {
                const n = Math.min(this.skipLeft, chunk.length - i);
                i += n;
                this.skipLeft -= n;
                if (this.skipLeft === 0 && this.afterSkip())
                    return { used: i, done: true };
                continue;
            }
            this.acc.push(chunk[i++]);
            if (this.step())
                return { used: i, done: true };
        }
        return { used: i, done: false };
    }
    /** Whether the scanner sits between frames (nothing of a frame seen yet). */
    get between() {
        return this.state === 'magic' && this.acc.length === 0;
    }
    bad(why) {
        fail('corrupt', `blob ${this.blob}: corrupt zstd frame: ${why}`);
    }
    /** After a header byte: true when the frame ended. */
    step() {
        const a = this.acc;
        if (this.state === 'magic' && a.length === 4) {
            const m = a[0] | (a[1] << 8) | (a[2] << 16);
            const top = a[3];
            this.acc = [];
            if (m === 0x2fb528 && top === 0xfd)
                this.state = 'descriptor';
            else if ((m & 0xfffff0) === 0x4d2a50 && top === 0x18)
                this.state = 'skippable';
            else
                this.bad('bad magic number');
        }
        else if (this.state === 'skippable' && a.length === 4) {
            const n = (a[0] | (a[1] << 8) | (a[2] << 16)) +
                a[3] * 2 ** 24;
            this.acc = [];
            return this.skip(n, true);
        }
        else if (this.state === 'descriptor') {
            const fhd = a[0];
            this.acc = [];
            if (fhd & 0x08)
                this.bad('reserved bit set');
            const single = (fhd >> 5) & 1;
            const fcs = fhd >> 6;
            this.checksum = ((fhd >> 2) & 1) === 1;
            const dictBytes = (fhd & 3) === 3 ? 4 : fhd & 3;
            const sizeBytes = fcs === 0 ? single : 1 << fcs;
            const rest = (single ? 0 : 1) + dictBytes + sizeBytes;
            return this.skip(rest, false);
        }
        else if (this.state === 'block' && a.length === 3) {
            const v = a[0] | (a[1] << 8) | (a[2] << 16);
            this.acc = [];
            const type = (v >> 1) & 3;
            if (type === 3)
                this.bad('reserved block type');
            const body = type === 1 ? 1 : v >>> 3;
            const last = (v & 1) === 1;
            return this.skip(body + (last && this.checksum ? 4 : 0), last);
        }
        return false;
    }
    /** Skips `n` bytes, then a block header or (thenEnd) the frame's end; true when it ended. */
    skip(n, thenEnd) {
        this.skipLeft = n;
        this.thenEnd = thenEnd;
        this.state = 'skip';
        return n === 0 && this.afterSkip();
    }
    afterSkip() {
        this.state = this.thenEnd ? 'magic' : 'block';
        return this.thenEnd;
    }
}
//# sourceMappingURL=worker-decode.js.map
;// CONCATENATED MODULE: ./build/src/store/worker-write.js
/**
 * The store worker's restore side: files written from their blobs (a store's, or frames of a
 * downloaded pack), every file's content verified against its digest as it is written, large
 * blobs streamed (the decoding is worker-decode.ts's); and the verification of stored blobs
 * (`verifyBlobs`: before a pack is uploaded, and `verify --deep`), through the same decoding.
 */






/**
 * Mtime and mode through the open file, then its [id, inode, mtimeMs] into done. A file made
 * with its mode (open's mode, less the umask) needs no chmod: the fstat tells.
 */
function settle(fd, m, done) {
    if (m.mtimeMs !== null) {
        const t = m.mtimeMs / 1000;
        external_node_fs_namespaceObject.futimesSync(fd, t, t);
    }
    const st = external_node_fs_namespaceObject.fstatSync(fd);
    if ((st.mode & 0o7777) !== m.mode)
        external_node_fs_namespaceObject.fchmodSync(fd, m.mode);
    done.push(m.id, st.ino, st.mtimeMs);
}
function writeMember(m, content, done) {
    // (A new file's fd writes whatever mode it is made with.)
    const fd = external_node_fs_namespaceObject.openSync(m.dest, 'wx', m.mode);
    try {
        worker_core_writeAll(fd, content);
        settle(fd, m, done);
    }
    finally {
        external_node_fs_namespaceObject.closeSync(fd);
    }
}
/** Streams a large standalone blob into one file, verifying as it goes. */
async function writeLarge(blob, at, m, done) {
    const out = external_node_fs_namespaceObject.openSync(m.dest, 'wx', 0o600);
    const hash = external_node_crypto_namespaceObject.createHash('sha256');
    try {
        await decodeStream(blob, at, m.size, (piece) => {
            hash.update(piece);
            worker_core_writeAll(out, piece);
        });
        if (hash.digest('hex') !== m.digest) {
            fail('corrupt', `blob ${blob}: content does not match its digest`);
        }
        settle(out, m, done);
    }
    finally {
        external_node_fs_namespaceObject.closeSync(out);
    }
}
/** Where rel (a validated manifest path, '' for a file root) goes under base. */
function underRoot(base, rel) {
    if (rel === '')
        return base;
    return base + external_node_path_namespaceObject.sep + (external_node_path_namespaceObject.sep === '/' ? rel : rel.replaceAll('/', external_node_path_namespaceObject.sep));
}
/** File i of a files wire (names: its rels, split). */
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
async function write({ blob, blobSize, stream, members, at }, done) {
    if (stream) {
        await writeLarge(blob, at, members[0], done);
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
        let why = null;
        if (m.offset + m.size > content.length)
            why = ' is shorter than its members';
        else if (sha256Hex(slice) !== m.digest)
            why = ': content does not match its digest';
        if (why === null)
            continue;
        // A group whose whole content still hashes to its name is sound: the entry placed the
        // file wrongly (a damaged artifact), and only the entry is at fault.
        if (blob !== m.digest && sha256Hex(content) === blob) {
            fail('size', `blob ${blob} does not hold ${m.digest} where its entry says`);
        }
        fail('corrupt', `blob ${blob}${why}`);
    }
    for (const m of members)
        writeMember(m, content.subarray(m.offset, m.offset + m.size), done);
}
async function writeBatch(w) {
    const names = w.rels.split('\0');
    const done = [];
    for (let j = 0; j + 1 < w.starts.length; j++) {
        const members = [];
        for (let i = w.starts[j]; i < w.starts[j + 1]; i++) {
            members.push({
                ...fileAt(w, names, i),
                id: w.ids[i],
                offset: w.offsets[i],
            });
        }
        const blob = w.blobs.slice(j * 64, j * 64 + 64);
        const at = w.pack
            ? {
                file: w.pack.files[w.pack.frames[3 * j]],
                offset: w.pack.frames[3 * j + 1],
                length: w.pack.frames[3 * j + 2],
            }
            : { file: worker_core_blobPath(blob), offset: 0, length: undefined };
        const job = {
            blob,
            blobSize: w.blobSizes[j],
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
    name;
    whole = external_node_crypto_namespaceObject.createHash('sha256');
    members;
    next = 0;
    active = [];
    pos = 0;
    constructor(name, members) {
        this.name = name;
        this.members = [...members].sort((a, b) => a.offset - b.offset);
    }
    update(piece) {
        this.whole.update(piece);
        const start = this.pos;
        const end = start + piece.length;
        while (this.next < this.members.length &&
            this.members[this.next].offset < end) {
            this.active.push({
                m: this.members[this.next],
                hash: external_node_crypto_namespaceObject.createHash('sha256'),
            });
            this.next++;
        }
        if (this.active.length > 0) {
            this.active = this.active.filter(({ m, hash }) => {
                const from = Math.max(m.offset, start);
                const to = Math.min(m.offset + m.size, end);
                if (to > from)
                    hash.update(piece.subarray(from - start, to - start));
                if (m.offset + m.size > end)
                    return true;
                this.check(m, hash);
                return false;
            });
        }
        this.pos = end;
    }
    /** After the last piece (the decoder has checked the size). */
    finish() {
        if (this.whole.digest('hex') !== this.name) {
            fail('corrupt', `blob ${this.name}: content does not match its digest`);
        }
        // Left: slices reaching past the end (the table checks refuse them before), and empty
        // members at the very end.
        for (const { m } of this.active)
            this.pastEnd(m);
        for (const m of this.members.slice(this.next)) {
            if (m.size > 0 || m.offset > this.pos)
                this.pastEnd(m);
            this.check(m, external_node_crypto_namespaceObject.createHash('sha256'));
        }
    }
    pastEnd(m) {
        fail('corrupt', `blob ${this.name}: grouped file ${m.digest} lies past its end`);
    }
    check(m, hash) {
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
async function verifyBlobs({ blobs }) {
    for (const b of blobs) {
        const at = b.at ?? { file: worker_core_blobPath(b.name), offset: 0, length: undefined };
        const check = new ContentCheck(b.name, b.members);
        if (b.size < STREAM_AT)
            check.update(decodeWhole(readBlobFile(b.name, at), b.size, b.name));
        else
            await decodeStream(b.name, at, b.size, (piece) => check.update(piece));
        check.finish();
    }
    return null;
}
//# sourceMappingURL=worker-write.js.map
;// CONCATENATED MODULE: ./build/src/store/store-worker.js
/**
 * The store's worker thread (started by pool.ts from the file beside it: build/src/store/ in
 * tests, dist/<entry>/ in the bundle, where scripts/bundle.ts puts it). It hashes, compresses,
 * decompresses, verifies and writes files (the store's only zstd code: the restore side and
 * verification in worker-write.ts, their decoding in worker-decode.ts); the operations, their
 * arguments and results are typed once in worker-protocol.ts. It loads zstd-napi's binary from the path the main thread found
 * (`StoreWorkerData.binding`) and falls back to `node:zlib` when there is none or it will not
 * load.
 *
 * Everything inside is synchronous per item (two threads on two cores keep the CPU busy while
 * the other waits on I/O) except node:zlib's streaming decode of large blobs. Blobs are
 * written to tmp/ and renamed into place; a blob that exists already is not rewritten.
 */










function compress(buf) {
    if (napi !== null && worker_core_native !== null) {
        const out = scratchOf(napi.compressBound(buf.length));
        const n = worker_core_native.cctx.compress2(out, buf);
        return out.subarray(0, n);
    }
    return external_node_zlib_namespaceObject.zstdCompressSync(buf, { params: zparams });
}
/** Writes the blob from its frame's parts (blob-layout.ts `writeOrAdopt`); its stored size. */
function writeBlob(digest, parts) {
    return writeOrAdopt(job.dirs, digest, parts, tmpName('blob')).stored;
}
/** Compressed parts of content, or raw parts when compression saves too little. */
function encode(content, name) {
    if (worthCompressing(content.length, name)) {
        const frame = compress(content);
        if (keepsFrame(frame.length, content.length))
            return { parts: [frame], raw: false };
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
function claim(claims, digest) {
    if (claims === undefined)
        return true;
    const tab = new BigInt64Array(claims);
    const key = claimKey(digest);
    const mask = tab.length - 1;
    let i = claimSlot(key, mask);
    for (let probe = 0; probe < 64; probe++, i = (i + 1) & mask) {
        const prev = Atomics.compareExchange(tab, i, 0n, key);
        if (prev === 0n)
            return true;
        if (prev === key)
            return false;
    }
    return true;
}
/** The digests in known (32 bytes each), as hex. */
function knownSet(known) {
    const out = new Set();
    if (known === undefined || known.length === 0)
        return out;
    const hex = Buffer.from(known.buffer, known.byteOffset, known.byteLength).toString('hex');
    for (let i = 0; i < hex.length; i += 64)
        out.add(hex.slice(i, i + 64));
    return out;
}
function putFiles({ files, known, claims }) {
    const skip = knownSet(known);
    const out = [];
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
function groupRoom(n) {
    if (groupBuf.length >= n)
        return;
    const next = Buffer.allocUnsafe(Math.max(n, groupBuf.length * 2, 4 << 20));
    groupBuf.copy(next);
    groupBuf = next;
}
/** Reads the file (size bytes when walked) into groupBuf at offset at; returns its length. */
function readInto(abs, size, at) {
    groupRoom(at + size + 1);
    const fd = external_node_fs_namespaceObject.openSync(abs, 'r');
    let n = 0;
    try {
        for (;;) {
            const r = external_node_fs_namespaceObject.readSync(fd, groupBuf, at + n, size + 1 - n, null);
            if (r === 0)
                break;
            n += r;
            if (n > size)
                break;
        }
    }
    finally {
        external_node_fs_namespaceObject.closeSync(fd);
    }
    if (n <= size)
        return n;
    // It grew since the walk: take it whole.
    const content = external_node_fs_namespaceObject.readFileSync(abs);
    groupRoom(at + content.length);
    content.copy(groupBuf, at);
    return content.length;
}
function putGroup({ files, known, claims }) {
    const skip = knownSet(known);
    const members = [];
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
    if (existing >= 0)
        return { group, size: offset, stored: existing, written: false, members };
    const { parts, raw } = encode(all, '');
    const stored = writeBlob(group, parts);
    return { group, size: offset, stored, written: true, raw, members };
}
function compressChunk({ data, out, length, name }) {
    const src = Buffer.from(data.buffer, data.byteOffset, length);
    const dst = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    let n = -1;
    if (worthCompressing(length, name)) {
        if (worker_core_native !== null) {
            n = worker_core_native.cctx.compress2(dst, src);
        }
        else {
            const frame = external_node_zlib_namespaceObject.zstdCompressSync(src, { params: zparams });
            if (frame.length <= dst.length)
                n = frame.copy(dst);
        }
        if (n >= 0 && !keepsFrame(n, length))
            n = -1;
    }
    const raw = n < 0;
    if (raw) {
        n = 0;
        for (const p of rawFrameParts(src)) {
            dst.set(p, n);
            n += p.length;
        }
    }
    job.transfers.push(data.buffer, out.buffer);
    return { data, out, length: n, raw };
}
/**
 * Lists the directories in paths and, depth first, the directories below them until about
 * budget entries are listed (DirListing). A directory appears after its parent; sub-directories
 * not reached are left to the caller.
 */
function listDirs({ paths, budget }) {
    const out = [];
    const stack = paths.slice().reverse();
    let listed = 0;
    for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
        let names;
        try {
            names = external_node_fs_namespaceObject.readdirSync(dir);
        }
        catch (err) {
            const code = codeOf(err);
            if (code === 'ENOENT') {
                out.push({ dir, names: [], stats: new Float64Array(0), targets: [], missing: true });
                continue;
            }
            if (code === 'ENOTDIR')
                fail('changed', `${dir} changed while it was being saved`);
            throw err;
        }
        // UTF-16 order is byte order but for characters outside the BMP.
        names.sort();
        if (names.some((n) => /[\uD800-\uDFFF]/.test(n)))
            names.sort(compareBytes);
        const stats = new Float64Array(names.length * 5);
        const targets = new Array(names.length).fill(null);
        const subdirs = [];
        for (let i = 0; i < names.length; i++) {
            const abs = dir + external_node_path_namespaceObject.sep + names[i];
            const st = external_node_fs_namespaceObject.lstatSync(abs, { throwIfNoEntry: false });
            if (st === undefined)
                continue;
            const kind = st.isFile() ? 1 : st.isDirectory() ? 2 : st.isSymbolicLink() ? 3 : 4;
            if (kind === 3) {
                try {
                    targets[i] = external_node_fs_namespaceObject.readlinkSync(abs);
                }
                catch (err) {
                    const code = codeOf(err);
                    if (code !== 'ENOENT' && code !== 'EINVAL')
                        throw err;
                    continue; // gone or replaced meanwhile: left out
                }
            }
            if (kind === 2)
                subdirs.push(abs);
            const o = i * 5;
            stats[o] = kind;
            stats[o + 1] = st.mode & 0o777;
            stats[o + 2] = st.size;
            stats[o + 3] = st.mtimeMs;
            stats[o + 4] = st.ino;
        }
        listed += names.length;
        out.push({ dir, names, stats, targets });
        job.transfers.push(stats.buffer);
        // Deeper only within the budget (the directories asked for are always listed).
        if (listed < budget) {
            for (let i = subdirs.length - 1; i >= 0; i--)
                stack.push(subdirs[i]);
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
            external_node_fs_namespaceObject.mkdirSync(p, 0o700);
        }
        catch (err) {
            const code = codeOf(err);
            if (code === 'ENOENT')
                external_node_fs_namespaceObject.mkdirSync(p, { recursive: true, mode: 0o700 });
            else if (code !== 'EEXIST' || !external_node_fs_namespaceObject.lstatSync(p).isDirectory())
                throw err;
        }
        const mode = modes[i];
        if (mode >= 0)
            external_node_fs_namespaceObject.chmodSync(p, mode);
    }
    return null;
}
/**
 * Gives existing directories their final mode and mtime, in the order given (the caller lists
 * children before parents). Never through a symlink: a path that is no longer a directory is
 * left alone.
 */
function settleDirs({ paths, modes, mtimes }) {
    for (let i = 0; i < paths.length; i++) {
        const p = paths[i];
        const st = external_node_fs_namespaceObject.lstatSync(p, { throwIfNoEntry: false });
        if (!st?.isDirectory())
            continue;
        const mode = modes[i];
        if (mode >= 0 && (st.mode & 0o7777) !== mode)
            external_node_fs_namespaceObject.chmodSync(p, mode);
        const mtime = mtimes[i];
        if (!Number.isNaN(mtime))
            external_node_fs_namespaceObject.utimesSync(p, mtime / 1000, mtime / 1000);
    }
    return null;
}
/** Each operation's implementation, checked against the protocol. */
const ops = {
    putFiles,
    putGroup,
    compressChunk,
    listDirs,
    mkdirBatch,
    settleDirs,
    writeBatch: writeBatch,
    verifyBlobs: verifyBlobs,
};
/** Runs one request; its reply (typed by its op). */
async function perform(id, op, args) {
    const run = ops[op];
    const result = await run(args);
    return { type: 'done', id, op, result };
}
const port = external_node_worker_threads_namespaceObject.parentPort;
if (port === null)
    throw new Error('store-worker.js runs only as a worker thread (pool.ts)');
const ready = { type: 'ready', backend: worker_core_native !== null ? 'zstd-napi' : 'node:zlib' };
port.postMessage(ready);
async function handle(msg) {
    let reply;
    try {
        job.dirs = msg.args.dirs;
        job.transfers = [];
        reply = await perform(msg.id, msg.op, msg.args);
    }
    catch (err) {
        job.transfers = [];
        reply = {
            type: 'failed',
            id: msg.id,
            error: err instanceof Error ? err.message : String(err),
            kind: err instanceof OpFailure ? err.kind : 'io',
        };
    }
    port?.postMessage(reply, job.transfers);
}
// One job at a time, in arrival order: the pool sends the next before this one is answered, and
// an op that awaits must not interleave with another (they share scratch buffers).
let chain = Promise.resolve();
port.on('message', (msg) => {
    chain = chain.then(() => handle(msg));
});
//# sourceMappingURL=store-worker.js.map
