/**
 * Git blob ids of many files at once, for the sources component (sources.ts decides which files).
 *
 * The id of a file is `sha1("blob <size>\0" + content)` (sha256 in a sha256-object-format
 * repository) of the content as git would store it: after the clean conversion of line endings
 * sources.ts chooses per file (EolConversion), so a CRLF checkout hashes to git's ids; of a
 * symlink, `link:` plus the blob id of its target string (never followed). A file with no CR
 * costs the conversion one memchr.
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

/**
 * Git's clean conversion of line endings for one file, as `git add` would apply it (convert.c,
 * crlf_to_git): `none` hashes the bytes as they are (`-text`, or no attribute and core.autocrlf
 * false); `text` drops every CR that comes before an LF (`text`, `eol=`); `auto` does the same
 * only for a file git takes for text (no NUL, no lone CR, few unprintable bytes: `text=auto`,
 * or no attribute and core.autocrlf true or input).
 */
export type EolConversion = 'none' | 'auto' | 'text';
const CONVERSION_CODE: Readonly<Record<EolConversion, number>> = { none: 0, auto: 1, text: 2 };

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
  convs: readonly number[],
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
  /** git's gather_stats, over chunks: `cr` says the previous chunk ended with a CR. */
  interface Stats {
    crlf: number;
    lonecr: number;
    nul: number;
    printable: number;
    nonprintable: number;
    cr: boolean;
    last: number;
  }
  const gather = (st: Stats, b: Buffer, len: number): void => {
    for (let i = 0; i < len; i++) {
      const ch = b[i] as number;
      if (st.cr) {
        st.cr = false;
        if (ch === 10) {
          st.crlf++;
          continue;
        }
        st.lonecr++;
      }
      if (ch === 13) st.cr = true;
      else if (ch === 10) continue;
      else if (ch === 127) st.nonprintable++;
      else if (ch < 32) {
        if (ch === 8 || ch === 9 || ch === 27 || ch === 12) st.printable++;
        else {
          if (ch === 0) st.nul++;
          st.nonprintable++;
        }
      } else st.printable++;
    }
    if (len > 0) st.last = b[len - 1] as number;
  };
  /** Whether git's clean conversion drops any CR from content with these stats. */
  const converts = (st: Stats, conv: number): boolean => {
    if (st.cr) st.lonecr++; // a CR at the very end
    st.cr = false;
    if (st.crlf === 0) return false;
    if (conv === 2) return true;
    const nonprintable = st.nonprintable - (st.last === 26 ? 1 : 0); // a final DOS EOF
    return st.lonecr === 0 && st.nul === 0 && st.printable >> 7 >= nonprintable;
  };
  const fresh = (): Stats => ({
    crlf: 0,
    lonecr: 0,
    nul: 0,
    printable: 0,
    nonprintable: 0,
    cr: false,
    last: -1,
  });
  /**
   * Drops each CR before an LF from b[0, len) in place; a final CR is left out and `held.cr`
   * set (the caller decides on it with the next chunk). Starts with held.cr false.
   */
  const strip = (b: Buffer, len: number, held: { cr: boolean }): number => {
    let n = 0;
    for (let i = 0; i < len; i++) {
      const ch = b[i] as number;
      if (held.cr) {
        held.cr = false;
        if (ch !== 10) b[n++] = 13; // n < i: the held CR (at i - 1) was not written
      }
      if (ch === 13) held.cr = true;
      else b[n++] = ch;
    }
    return n;
  };
  /** Reads the whole of fd into pool.buf from `at`; the count read (one more: it grew). */
  const readAll = (fd: number, at: number, size: number, abs: string): number => {
    const end = at + size;
    if (pool.buf.length <= end) {
      pool.buf = Buffer.allocUnsafe(
        Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64),
      );
    }
    let n = at;
    for (;;) {
      const got = fsm.readSync(fd, pool.buf, n, end + 1 - n, null);
      if (got === 0) break;
      n += got;
      if (n >= end) break; // a read short of what was asked: the end of the file
    }
    if (n !== end) throw changed(abs);
    return n;
  };
  const one = (abs: string, conv: number): string | null => {
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
      if (st.size >= largeBytes) {
        // In chunks. The bytes as they are first; with a conversion, a file with a CR in it is
        // then read again to decide it, and once more to hash what git would store.
        const h = cry.createHash(format).update(`blob ${st.size}\0`);
        let sawCR = false;
        let total = 0;
        for (;;) {
          const got = fsm.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          h.update(pool.buf.subarray(0, got));
          if (conv !== 0 && !sawCR) sawCR = pool.buf.subarray(0, got).indexOf(13) >= 0;
        }
        if (total !== st.size) throw changed(abs);
        if (!sawCR) return h.digest('hex');
        const stats = fresh();
        total = 0;
        for (;;) {
          const got = fsm.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          gather(stats, pool.buf, got);
        }
        if (total !== st.size) throw changed(abs);
        if (!converts(stats, conv)) return h.digest('hex');
        const size = st.size - stats.crlf;
        const c = cry.createHash(format).update(`blob ${size}\0`);
        const held = { cr: false };
        let hashed = 0;
        total = 0;
        for (;;) {
          const got = fsm.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          if (held.cr && pool.buf[0] !== 10) {
            c.update('\r'); // a CR that ended the last chunk, and no LF after it
            hashed++;
          }
          held.cr = false;
          const n = strip(pool.buf, got, held);
          hashed += n;
          c.update(pool.buf.subarray(0, n));
        }
        if (held.cr) {
          c.update('\r');
          hashed++;
        }
        if (total !== st.size || hashed !== size) throw changed(abs);
        return c.digest('hex');
      }
      if (conv !== 0) {
        // The content first, then the header of its cleaned size in front of it.
        const room = 24;
        readAll(fd, room, st.size, abs);
        const content = pool.buf.subarray(room, room + st.size);
        let size = content.length;
        const stats = fresh();
        if (content.indexOf(13) >= 0) gather(stats, content, content.length);
        if (stats.crlf > 0 && converts(stats, conv)) {
          const held = { cr: false };
          size = strip(content, content.length, held);
          if (held.cr) content[size++] = 13; // a final CR stays
        }
        const header = Buffer.from(`blob ${size}\0`, 'latin1');
        header.copy(pool.buf, room - header.length);
        return cry.hash(format, pool.buf.subarray(room - header.length, room + size), 'hex');
      }
      // Header and content side by side, and one byte of room: reading it means the file grew.
      const header = `blob ${st.size}\0`;
      const end = header.length + st.size;
      if (pool.buf.length <= end) {
        pool.buf = Buffer.allocUnsafe(
          Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64),
        );
      }
      const n = pool.buf.write(header, 0, 'latin1');
      readAll(fd, n, st.size, abs);
      return cry.hash(format, pool.buf.subarray(0, end), 'hex');
    } finally {
      fsm.closeSync(fd);
    }
  };
  const ids: (string | null)[] = [];
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i] as string;
    const abs = root + rel;
    try {
      ids.push(one(abs, convs[i] ?? 0));
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
parentPort.on('message', ({ rels, convs }) => {
  parentPort.postMessage(
    hashBatch(fs, crypto, workerData.root, rels, convs, workerData.format, ${LARGE_FILE_BYTES}, pool));
});
`;

/** Paths to hash and the conversion of each (CONVERSION_CODE). */
interface Batch {
  readonly rels: string[];
  readonly convs: number[];
}

interface Lane {
  readonly worker: Worker;
  /** Batches sent, oldest first: a worker answers in order. */
  readonly inFlight: Batch[];
}

/**
 * Hashes paths added one by one (relative, with `/` separators) under `workspace`, reporting
 * each id through `onId`. `end()` says no more will come and settles once every id is reported,
 * or rejects with the first failure. A caller that adds paths from a long synchronous loop
 * should yield to the event loop now and then, so that finished batches make room for more.
 */
export class BlobHasher {
  private readonly root: string;
  private batch: Batch = { rels: [], convs: [] };
  private readonly queue: Batch[] = [];
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

  /** Hashes `rel` after git's clean conversion `conv` (see EolConversion). */
  add(rel: string, conv: EolConversion = 'none'): void {
    this.batch.rels.push(rel);
    this.batch.convs.push(CONVERSION_CODE[conv]);
    if (this.batch.rels.length >= BATCH_FILES) {
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
    if (this.batch.rels.length === 0) return;
    this.queue.push(this.batch);
    this.enqueuedFiles += this.batch.rels.length;
    this.batch = { rels: [], convs: [] };
  }

  /** Few files: one thread, no worker start-up. */
  private hashHere(): void {
    const pool: ReadBuffer = { buf: Buffer.allocUnsafe(CHUNK_BYTES) };
    for (const { rels, convs } of this.queue.splice(0)) {
      const result = hashBatch(
        fs,
        crypto,
        this.root,
        rels,
        convs,
        this.format,
        LARGE_FILE_BYTES,
        pool,
      );
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
        const batch = this.queue.shift() as Batch;
        lane.inFlight.push(batch);
        lane.worker.postMessage(batch);
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
      const batch = lane.inFlight.shift();
      if (batch !== undefined && this.take(batch.rels, result)) this.pump();
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

/**
 * The ids of `rels` under `workspace`, by path (null: not a file or symlink, or gone), each
 * after the conversion `conversionOf` gives it.
 */
export async function hashPaths(
  workspace: string,
  rels: readonly string[],
  format: ObjectFormat,
  conversionOf: (rel: string) => EolConversion = () => 'none',
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const hasher = new BlobHasher(workspace, format, (rel, id) => out.set(rel, id));
  for (const rel of rels) hasher.add(rel, conversionOf(rel));
  await hasher.end();
  return out;
}
