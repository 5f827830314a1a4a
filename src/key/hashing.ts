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
 * beyond, two worker threads (hash-worker.ts) hash batches as they fill, at most MAX_IN_FLIGHT
 * each. Both run `hashBatch` (hash-batch.ts), which holds the per-file loop described here.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  CHUNK_BYTES,
  LARGE_FILE_BYTES,
  hashBatch,
  type BatchResult,
  type HashReply,
  type HashRequest,
  type HashWorkerData,
  type ReadBuffer,
} from './hash-batch.js';

export { LARGE_FILE_BYTES } from './hash-batch.js';

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

/** Below this many files to hash, starting worker threads costs more than it saves. */
const WORKER_THRESHOLD = 512;
const BATCH_FILES = 256;
/** Batches sent to one worker and not yet answered: one being hashed, one waiting behind it. */
const MAX_IN_FLIGHT = 2;
/** More than two threads was slower on the measured 2-core runners (performance notes). */
const MAX_WORKERS = 2;

/**
 * The hashing worker's module: hash-worker.js beside this file, found by a path relative to it
 * (in the bundle, beside dist/<entry>/index.js, where scripts/bundle.ts puts it).
 */
export function hashWorkerPath(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'hash-worker.js');
}

/** Paths to hash and the conversion of each (CONVERSION_CODE). */
type Batch = HashRequest;

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
      const result = hashBatch(this.root, rels, convs, this.format, LARGE_FILE_BYTES, pool);
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
        const request: HashRequest = batch;
        lane.worker.postMessage(request);
      }
    }
    if (this.ended && this.queue.length === 0 && this.lanes.every((l) => l.inFlight.length === 0)) {
      this.stopLanes();
      this.settle();
    }
  }

  private startLane(): Lane {
    const workerData: HashWorkerData = { root: this.root, format: this.format };
    const worker = new Worker(hashWorkerPath(), { workerData });
    const lane: Lane = { worker, inFlight: [] };
    worker.on('message', (result: HashReply) => {
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
