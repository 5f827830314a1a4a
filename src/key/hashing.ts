/**
 * Git blob ids of many files at once, for the sources component (sources.ts decides which files).
 *
 * The id of a file is `sha1("blob <size>\0" + content)` (sha256 in a sha256-object-format
 * repository); of a symlink, `link:` plus the blob id of its target string (never followed).
 *
 * Per-file overhead dominates, not hashing (docs/performance-notes), so the loop is lean: one
 * open (no-follow, non-blocking so a FIFO cannot hang us), one fstat, one read of `size + 1`
 * bytes into a buffer reused across files (a short read is the end of the file; a full one
 * means the file grew), one close, one one-shot hash over header and content together. Files
 * of LARGE_FILE_BYTES or more are hashed in chunks.
 *
 * A BlobHasher takes paths as they come (a walk can feed it while it is still listing), in
 * batches. Below WORKER_THRESHOLD files it hashes them on the calling thread when ended;
 * beyond, two worker threads hash batches as they fill, at most MAX_IN_FLIGHT each.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

/** Git's object format: which hash a blob id uses. */
export type ObjectFormat = 'sha1' | 'sha256';

/** Files at or above this size are hashed in chunks instead of being read whole. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
/** The reusable read buffer's first size, and the chunk size for large files. */
const CHUNK_BYTES = 1024 * 1024;
/** Below this many files to hash, starting worker threads costs more than it saves. */
const WORKER_THRESHOLD = 512;
const BATCH_FILES = 256;
/** Batches sent to one worker and not yet answered: one being hashed, one waiting behind it. */
const MAX_IN_FLIGHT = 2;
/** More than two threads was slower on the measured 2-core runners (performance notes). */
const MAX_WORKERS = 2;

/** What hashing one batch gives: per path an id, or null (not a file or symlink, or gone). */
interface BatchResult {
  readonly ids: (string | null)[];
  /** The first failure in the batch, if any: the key cannot be computed. */
  readonly error?: string;
}

/** The reused read buffer: grown to the largest small file seen, never past LARGE_FILE_BYTES. */
interface ReadBuffer {
  buf: Buffer;
}

/**
 * The ids of `rels` (relative to `root`, which ends with a separator). Self-contained (all it
 * uses is a parameter): its source is also the worker's code.
 */
function hashBatch(
  fsm: typeof fs,
  cry: typeof crypto,
  root: string,
  rels: readonly string[],
  format: string,
  largeBytes: number,
  pool: ReadBuffer,
): BatchResult {
  const c = fsm.constants;
  const noFollow = c.O_NOFOLLOW;
  const flags = c.O_RDONLY | (noFollow ?? 0) | (c.O_NONBLOCK ?? 0);
  const changed = (abs: string) => new Error(`${abs} changed while it was being hashed`);
  const link = (abs: string): string => {
    const target = Buffer.from(fsm.readlinkSync(abs), 'utf8');
    return `link:${cry.createHash(format).update(`blob ${target.length}\0`).update(target).digest('hex')}`;
  };
  const one = (abs: string): string | null => {
    if (noFollow === undefined && fsm.lstatSync(abs).isSymbolicLink()) return link(abs);
    let fd: number;
    try {
      fd = fsm.openSync(abs, flags);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ELOOP') throw err;
      return link(abs);
    }
    try {
      const st = fsm.fstatSync(fd);
      if (!st.isFile()) return null;
      const header = `blob ${st.size}\0`;
      if (st.size >= largeBytes) {
        const h = cry.createHash(format).update(header);
        let total = 0;
        for (;;) {
          const got = fsm.readSync(fd, pool.buf, 0, pool.buf.length, null);
          if (got === 0) break;
          total += got;
          h.update(pool.buf.subarray(0, got));
        }
        if (total !== st.size) throw changed(abs);
        return h.digest('hex');
      }
      // Header and content side by side, and one byte of room: reading it means the file grew.
      const end = header.length + st.size;
      if (pool.buf.length <= end) {
        pool.buf = Buffer.allocUnsafe(
          Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64),
        );
      }
      const buf = pool.buf;
      let n = buf.write(header, 0, 'latin1');
      for (;;) {
        const got = fsm.readSync(fd, buf, n, end + 1 - n, null);
        if (got === 0) break;
        n += got;
        if (n >= end) break; // a read short of what was asked: the end of the file
      }
      if (n !== end) throw changed(abs);
      return cry.hash(format, buf.subarray(0, end), 'hex');
    } finally {
      fsm.closeSync(fd);
    }
  };
  const ids: (string | null)[] = [];
  for (const rel of rels) {
    const abs = root + rel;
    try {
      ids.push(one(abs));
    } catch (err) {
      const code = (err as { code?: string } | undefined)?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        ids.push(null); // gone since it was listed
        continue;
      }
      const message = String((err as Error).message ?? err);
      return { ids, error: message.startsWith(abs) ? message : `${abs}: ${message}` };
    }
  }
  return { ids };
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const hashBatch = (${hashBatch.toString()});
const pool = { buf: Buffer.allocUnsafe(${CHUNK_BYTES}) };
parentPort.on('message', (rels) => {
  parentPort.postMessage(
    hashBatch(fs, crypto, workerData.root, rels, workerData.format, ${LARGE_FILE_BYTES}, pool));
});
`;

interface Lane {
  readonly worker: Worker;
  /** Batches sent, oldest first: a worker answers in order. */
  readonly inFlight: string[][];
}

/**
 * Hashes paths added one by one (relative, with `/` separators) under `workspace`, reporting
 * each id through `onId`. `end()` says no more will come and settles once every id is reported,
 * or rejects with the first failure. A caller that adds paths from a long synchronous loop
 * should yield to the event loop now and then, so that finished batches make room for more.
 */
export class BlobHasher {
  private readonly root: string;
  private batch: string[] = [];
  private readonly queue: string[][] = [];
  private enqueuedFiles = 0;
  private lanes: Lane[] | undefined;
  private ended = false;
  private failure: Error | undefined;
  private readonly done: Promise<void>;
  private settle: (err?: Error) => void = () => undefined;

  constructor(
    workspace: string,
    private readonly format: ObjectFormat,
    private readonly onId: (rel: string, id: string | null) => void,
  ) {
    this.root = workspace.endsWith(path.sep) ? workspace : workspace + path.sep;
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.done.catch(() => undefined); // end() hands the failure over; never unhandled
  }

  add(rel: string): void {
    this.batch.push(rel);
    if (this.batch.length >= BATCH_FILES) {
      this.enqueue();
      this.pump();
    }
  }

  /** No more paths: resolves when every id has been reported. */
  end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.enqueue();
      if (this.lanes !== undefined) this.pump();
      else if (this.failure === undefined) {
        try {
          this.hashHere();
        } catch (err) {
          this.fail(err as Error);
        }
      }
    }
    return this.done;
  }

  /** Stop now (the listing failed): workers are stopped and nothing more is reported. */
  abort(err: Error): void {
    this.fail(err);
  }

  private enqueue(): void {
    if (this.batch.length === 0) return;
    this.queue.push(this.batch);
    this.enqueuedFiles += this.batch.length;
    this.batch = [];
  }

  /** Few files: one thread, no worker start-up. */
  private hashHere(): void {
    const pool: ReadBuffer = { buf: Buffer.allocUnsafe(CHUNK_BYTES) };
    for (const rels of this.queue.splice(0)) {
      const result = hashBatch(fs, crypto, this.root, rels, this.format, LARGE_FILE_BYTES, pool);
      if (!this.take(rels, result)) return;
    }
    this.settle();
  }

  private pump(): void {
    if (this.failure !== undefined) return;
    if (this.lanes === undefined) {
      const workers = Math.min(MAX_WORKERS, os.availableParallelism());
      if (workers < 2 || this.enqueuedFiles < WORKER_THRESHOLD) return;
      this.lanes = Array.from({ length: workers }, () => this.startLane());
    }
    for (const lane of this.lanes) {
      while (lane.inFlight.length < MAX_IN_FLIGHT && this.queue.length > 0) {
        const rels = this.queue.shift() as string[];
        lane.inFlight.push(rels);
        lane.worker.postMessage(rels);
      }
    }
    if (this.ended && this.queue.length === 0 && this.lanes.every((l) => l.inFlight.length === 0)) {
      this.stopLanes();
      this.settle();
    }
  }

  private startLane(): Lane {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { root: this.root, format: this.format },
    });
    const lane: Lane = { worker, inFlight: [] };
    worker.on('message', (result: BatchResult) => {
      const rels = lane.inFlight.shift();
      if (rels !== undefined && this.take(rels, result)) this.pump();
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => {
      if (lane.inFlight.length > 0) this.fail(new Error(`A hashing worker exited (${code})`));
    });
    return lane;
  }

  /** Report a batch's ids; false (and the hasher failed) when the batch failed. */
  private take(rels: readonly string[], result: BatchResult): boolean {
    if (this.failure !== undefined) return false;
    if (result.error !== undefined) {
      this.fail(new Error(`Could not hash a source file: ${result.error}`));
      return false;
    }
    result.ids.forEach((id, i) => this.onId(rels[i] as string, id));
    return true;
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.queue.length = 0;
    this.stopLanes();
    this.settle(err);
  }

  private stopLanes(): void {
    for (const lane of this.lanes ?? []) {
      lane.inFlight.length = 0;
      void lane.worker.terminate();
    }
  }
}

/** The ids of `rels` under `workspace`, by path (null: not a file or symlink, or gone). */
export async function hashPaths(
  workspace: string,
  rels: readonly string[],
  format: ObjectFormat,
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const hasher = new BlobHasher(workspace, format, (rel, id) => out.set(rel, id));
  for (const rel of rels) hasher.add(rel);
  await hasher.end();
  return out;
}
