/**
 * The one message protocol between the store's worker pool (pool.ts, main thread) and its
 * workers (store-worker.ts): every operation's arguments and result, the request and reply
 * unions, and the constants both sides must agree on. Both sides import these types; nothing
 * is read by name that the compiler has not checked.
 *
 * Operations:
 *   putFiles   files (below STREAM_AT; larger ones are read on the main thread and their
 *              chunks come through compressChunk) -> one blob per file
 *   putGroup   files -> one group blob: the members' contents back to back
 *   compressChunk  one zstd frame of data[0, length) written into out (compressed, or raw
 *              blocks when that saves too little); both buffers come back (transferred)
 *   listDirs   the listing of each directory in paths and, depth first, of the directories
 *              below them up to about budget entries (snapshot.ts's walk)
 *   mkdirBatch the directories made, each then given modes[i] (-1: left 0700), a missing
 *              parent made first (0700)
 *   settleDirs existing directories given their final modes[i] (-1: as they are) and mtimes[i]
 *              (NaN: as it is), in order; one that is no longer a directory is left alone
 *   writeBatch verified files written from each blob (restore.ts) -> [id, inode, mtimeMs] of
 *              each file written, flat
 *   verifyBlobs stored blobs decoded and checked against their digests and their grouped
 *              files' (blobs.ts `verifyStored`) -> null, or a failure naming the blob
 */
import type { BlobDirs } from './blob-layout.js';

/** Files at least this large are streamed in 4 MiB chunks, never read into one buffer. */
export const STREAM_AT = 16 * 1024 * 1024;

/** Every job names the store it works on (blob-layout.ts `BlobDirs`). */
export type PoolDirs = BlobDirs;

/** What the pool hands each worker when it starts. */
export interface StoreWorkerData {
  /** zstd-napi's native binary (pool.ts `nativeBindingPath`); none: node:zlib. */
  readonly binding: string | undefined;
}

/**
 * Why a worker operation failed: `corrupt` blobs are deleted by the caller; `size` (the entry
 * disagrees with a sound blob: a wrong size, a grouped file placed wrongly) are not.
 */
export type WorkerFailureKind = 'corrupt' | 'size' | 'missing' | 'changed' | 'io';

/** A file to store: its path and its size when walked. */
export interface FileToPut {
  readonly abs: string;
  readonly size: number;
}

export interface PutArgs {
  readonly files: readonly FileToPut[];
  /** Digests to skip (the previous entry holds them), 32 bytes each. */
  readonly known?: Uint8Array;
  /** The save's claim table (see `claimKey`); none: every file is stored. */
  readonly claims?: SharedArrayBuffer;
}

export interface PutResult {
  readonly digest: string;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly raw?: boolean;
  readonly known?: boolean;
  /** Another file of this save claimed the content first (see `claimKey`). */
  readonly dup?: boolean;
}

export interface GroupMember {
  readonly digest: string;
  readonly size: number;
  /** Where it sits in the group's content; -1 when it is not in it (known, or a duplicate). */
  readonly offset: number;
  readonly dup?: boolean;
}

export interface GroupResult {
  readonly group: string | null;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly raw?: boolean;
  readonly members: GroupMember[];
}

export interface ChunkArgs {
  readonly data: Uint8Array;
  readonly out: Uint8Array;
  readonly length: number;
  /** The file's name (content of some names is stored as it is). */
  readonly name: string;
}

export interface ChunkResult {
  readonly data: Uint8Array;
  readonly out: Uint8Array;
  /** The frame's length in `out`. */
  readonly length: number;
  readonly raw: boolean;
}

export interface ListArgs {
  readonly paths: readonly string[];
  readonly budget: number;
}

/**
 * One directory's listing: its entry names in byte order and five numbers per entry from lstat
 * (kind: 0 gone, 1 file, 2 dir, 3 symlink, 4 other; permission bits; size; mtimeMs; inode),
 * plus each symlink's target; `missing` where the directory is gone.
 */
export interface DirListing {
  readonly dir: string;
  readonly names: string[];
  readonly stats: Float64Array;
  readonly targets: (string | null)[];
  readonly missing?: boolean;
}

export interface MkdirArgs {
  readonly paths: readonly string[];
  readonly modes: readonly number[];
}

export interface SettleDirsArgs {
  readonly paths: readonly string[];
  readonly modes: readonly number[];
  readonly mtimes: Float64Array;
}

/**
 * Files in the form that crosses to a worker cheaply (a few strings and typed arrays, no object
 * per file): file i goes under `bases[base[i]]` at the i-th of the NUL-separated `rels` (NUL is
 * never in a manifest path); its digest is the i-th 64 characters of `digests`;
 * NaN in `mtimes` leaves the mtime.
 */
export interface FilesWire {
  readonly bases: string[];
  readonly base: Uint32Array;
  readonly rels: string;
  readonly digests: string;
  readonly sizes: Float64Array;
  readonly modes: Uint16Array;
  readonly mtimes: Float64Array;
}

/**
 * A batch of write jobs: the members of job j are files `starts[j]` up to `starts[j + 1]` of
 * the files wire, each at `offsets[i]` in blob j's content (the j-th 64 characters of `blobs`,
 * `blobSizes[j]` bytes, `streams[j]` 1 when it is streamed).
 */
export interface WriteWire extends FilesWire {
  readonly blobs: string;
  readonly blobSizes: Float64Array;
  readonly streams: Uint8Array;
  readonly starts: Uint32Array;
  readonly ids: Uint32Array;
  readonly offsets: Float64Array;
  /**
   * Read the blobs from pack files rather than the store (a restore straight from downloaded
   * packs): blob j's frame is in `files[frames[3j]]` at `frames[3j + 1]`, `frames[3j + 2]`
   * bytes long.
   */
  readonly pack?: { readonly files: readonly string[]; readonly frames: Float64Array };
}

/** A grouped file inside a group blob: its slice of the content and the digest it must have. */
export interface GroupSlice {
  readonly digest: string;
  readonly offset: number;
  readonly size: number;
}

/** A stored blob to verify: `size` bytes of content named `name`, holding `members`. */
export interface BlobToVerify {
  readonly name: string;
  readonly size: number;
  readonly members: readonly GroupSlice[];
  /** Where its frame is when it is not the store's file (a frame lent from a pack). */
  readonly at?: { readonly file: string; readonly offset: number; readonly length: number };
}

export interface VerifyArgs {
  readonly blobs: readonly BlobToVerify[];
}

/** Each operation's arguments (besides `dirs`) and result. */
export interface StoreOps {
  putFiles: { args: PutArgs; result: PutResult[] };
  putGroup: { args: PutArgs; result: GroupResult };
  compressChunk: { args: ChunkArgs; result: ChunkResult };
  listDirs: { args: ListArgs; result: DirListing[] };
  mkdirBatch: { args: MkdirArgs; result: null };
  settleDirs: { args: SettleDirsArgs; result: null };
  writeBatch: { args: WriteWire; result: number[] };
  verifyBlobs: { args: VerifyArgs; result: null };
}
export type StoreOp = keyof StoreOps;
export type ArgsOf<K extends StoreOp> = StoreOps[K]['args'] & { readonly dirs: PoolDirs };
export type ResultOf<K extends StoreOp> = StoreOps[K]['result'];

/** Main thread to worker: one job. */
export type StoreRequest = {
  [K in StoreOp]: { readonly id: number; readonly op: K; readonly args: ArgsOf<K> };
}[StoreOp];

/** Worker to main thread: once when it is ready, then one reply per request, in order. */
export type StoreReply =
  | { readonly type: 'ready'; readonly backend: 'zstd-napi' | 'node:zlib' }
  | {
      [K in StoreOp]: {
        readonly type: 'done';
        readonly id: number;
        readonly op: K;
        readonly result: ResultOf<K>;
      };
    }[StoreOp]
  | {
      readonly type: 'failed';
      readonly id: number;
      readonly error: string;
      readonly kind: WorkerFailureKind;
    };

/**
 * The claim table's key for a digest (hex): its first 64 bits, never 0 (0 marks a free slot);
 * its first slot is the key's low 32 bits under the table's mask. The main thread fills the
 * table ahead of a save (snapshot.ts) and the workers claim in it; both use this.
 */
export function claimKey(digest: string): bigint {
  const key = BigInt.asIntN(64, BigInt(`0x${digest.slice(0, 16)}`));
  return key === 0n ? 1n : key;
}

export function claimSlot(key: bigint, mask: number): number {
  return Number(BigInt.asUintN(32, key)) & mask;
}
