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
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { compareBytes } from '../util/bytes.js';
import { keepsFrame, rawFrameParts, worthCompressing } from './codec-rules.js';
import { writeOrAdopt } from './blob-layout.js';
import {
  claimKey,
  claimSlot,
  type ArgsOf,
  type ChunkArgs,
  type ChunkResult,
  type DirListing,
  type GroupMember,
  type GroupResult,
  type ListArgs,
  type MkdirArgs,
  type SettleDirsArgs,
  type PutArgs,
  type PutResult,
  type ResultOf,
  type StoreOp,
  type StoreReply,
  type StoreRequest,
} from './worker-protocol.js';
import {
  codeOf,
  fail,
  job,
  native,
  napi,
  OpFailure,
  scratchOf,
  sha256Hex,
  storedSize,
  tmpName,
  zparams,
} from './worker-core.js';
import { verifyBlobs, writeBatch } from './worker-write.js';

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
  return writeOrAdopt(job.dirs, digest, parts, tmpName('blob')).stored;
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
  job.transfers.push(data.buffer as ArrayBuffer, out.buffer as ArrayBuffer);
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
    job.transfers.push(stats.buffer);
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

/**
 * Gives existing directories their final mode and mtime, in the order given (the caller lists
 * children before parents). Never through a symlink: a path that is no longer a directory is
 * left alone.
 */
function settleDirs({ paths, modes, mtimes }: SettleDirsArgs): null {
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i] as string;
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st?.isDirectory()) continue;
    const mode = modes[i] as number;
    if (mode >= 0 && (st.mode & 0o7777) !== mode) fs.chmodSync(p, mode);
    const mtime = mtimes[i] as number;
    if (!Number.isNaN(mtime)) fs.utimesSync(p, mtime / 1000, mtime / 1000);
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
  settleDirs,
  writeBatch,
  verifyBlobs,
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
    job.dirs = msg.args.dirs;
    job.transfers = [];
    reply = await perform(msg.id, msg.op, msg.args);
  } catch (err) {
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
port.on('message', (msg: StoreRequest) => {
  chain = chain.then(() => handle(msg));
});
