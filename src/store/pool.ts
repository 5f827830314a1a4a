/**
 * The store's worker pool: it hashes, compresses, decompresses and writes files off the main
 * thread (worker-source.ts holds the code the workers run).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../errors.js';
import { BACKEND_ENV, CHAIN_LOG, HASH_LOG, LEVEL } from './codec.js';
import { WORKER_SOURCE } from './worker-source.js';

/** Files at least this large are streamed in 4 MiB chunks, never read into one buffer. */
export const STREAM_AT = 16 * 1024 * 1024;
/** A compressed blob must save at least this fraction, or the content is stored as it is. */
export const MIN_SAVING = 0.03;
/** Unpacked copies (restore.ts) carry this mtime: one that differs was touched after we wrote it. */
export const UNPACKED_MTIME_MS = 1_000_000_000_000;
/** Environment variable: the number of worker threads (default: cores, at most 4). */
export const WORKERS_ENV = 'CLYDE_STORE_WORKERS';

/**
 * Why a worker operation failed: `corrupt` blobs are deleted by the caller; `size` (the entry
 * disagrees with a sound blob: a wrong size, a grouped file placed wrongly) are not.
 */
export type WorkerFailureKind = 'corrupt' | 'size' | 'missing' | 'changed' | 'io';

export class WorkerOpError extends StoreError {
  constructor(
    message: string,
    readonly kind: WorkerFailureKind,
  ) {
    super(message);
  }
}

/**
 * Where zstd-napi's native binary is: beside the bundle (`dist/<entry>/build/Release`, where
 * scripts/bundle.ts puts it) or in node_modules. Undefined when neither exists or the
 * environment forces node:zlib.
 */
export function nativeBindingPath(): string | undefined {
  if ((process.env[BACKEND_ENV] ?? '').trim().toLowerCase() === 'node') return undefined;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'build', 'Release', 'binding.node')];
  try {
    const req = createRequire(import.meta.url);
    const js = req.resolve('zstd-napi/binding.js');
    candidates.push(path.join(path.dirname(js), 'build', 'Release', 'binding.node'));
  } catch {
    // not resolvable from here (bundled)
  }
  return candidates.find((c) => existsSync(c));
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/**
 * Jobs handed to one worker at once: the next waits in the worker's own message queue, so a
 * worker never idles while the main thread is busy between a reply and the next dispatch.
 */
const DEPTH = 2;

interface Slot {
  readonly worker: Worker;
  readonly ready: Promise<string>;
  /** Jobs sent to it and not yet answered. */
  inflight: number;
  /** Ready has resolved: messages can be posted at once. */
  online: boolean;
}

/** Every job names the store it works on: `{ dirs: { blobDir, tmpDir }, ... }`. */
export interface PoolDirs {
  readonly blobDir: string;
  readonly tmpDir: string;
}

/**
 * A fixed set of worker threads for one store; jobs queue and go to the next idle worker.
 * Workers are unref'd while idle, so an idle pool never keeps the process alive.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: {
    op: string;
    args: unknown;
    priority: number;
    transfer: readonly ArrayBuffer[];
    p: Pending;
  }[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;

  constructor(size = defaultWorkers()) {
    const workerData = {
      binding: nativeBindingPath(),
      level: LEVEL,
      hashLog: HASH_LOG,
      chainLog: CHAIN_LOG,
      minSaving: MIN_SAVING,
      unpackedMtimeMs: UNPACKED_MTIME_MS,
    };
    for (let i = 0; i < size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      worker.unref();
      const ready = new Promise<string>((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', (m: { backend: string }) => resolve(m.backend));
      });
      const slot: Slot = { worker, ready, inflight: 0, online: false };
      worker.on('error', (err) => this.failAll(err));
      ready.then(
        () => {
          slot.online = true;
          worker.on('message', (m: Reply) => this.onReply(slot, m));
          // (An unref before the worker is online does not hold; repeat it once it is.)
          if (slot.inflight === 0) worker.unref();
        },
        (err: unknown) => this.failAll(err),
      );
      this.slots.push(slot);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The backend the workers use ('zstd-napi' or 'node:zlib'). */
  async backend(): Promise<string> {
    return (this.slots[0] as Slot).ready;
  }

  /**
   * Queues a job; an idle worker takes the queued job of highest `priority` (the largest first,
   * so that the workers finish together), the oldest among equals. The buffers in `transfer`
   * move to the worker (no copy) and are unusable here until a reply hands them back.
   */
  run<T>(
    op: string,
    args: unknown,
    priority = 0,
    transfer: readonly ArrayBuffer[] = [],
  ): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('the store worker pool is closed'));
    return new Promise<T>((resolve, reject) => {
      const p = { resolve: resolve as (v: unknown) => void, reject };
      const job = { op, args, priority, transfer, p };
      let i = this.queue.length;
      while (i > 0 && (this.queue[i - 1] as { priority: number }).priority < priority) i--;
      this.queue.splice(i, 0, job);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    // The least loaded worker first, so that both start at once; then each up to DEPTH.
    for (let depth = 1; depth <= DEPTH; depth++) {
      for (const slot of this.slots) {
        if (slot.inflight >= depth) continue;
        const job = this.queue.shift();
        if (job === undefined) return;
        this.send(slot, job);
      }
    }
  }

  private send(
    slot: Slot,
    job: { op: string; args: unknown; transfer: readonly ArrayBuffer[]; p: Pending },
  ): void {
    const id = this.seq++;
    slot.inflight++;
    slot.worker.ref();
    this.pending.set(id, job.p);
    const msg = { id, op: job.op, args: job.args };
    const transfer = job.transfer as ArrayBuffer[];
    if (slot.online) slot.worker.postMessage(msg, transfer);
    else void slot.ready.then(() => slot.worker.postMessage(msg, transfer));
  }

  private onReply(slot: Slot, m: Reply): void {
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    slot.inflight--;
    if (slot.inflight === 0) slot.worker.unref();
    if (p !== undefined) {
      if (m.ok) p.resolve(m.result);
      else p.reject(new WorkerOpError(m.error ?? 'worker failed', m.kind ?? 'io'));
    }
    this.dispatch();
  }

  private failAll(err: unknown): void {
    const e = new StoreError(`store worker failed: ${err instanceof Error ? err.message : err}`);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const j of this.queue.splice(0)) j.p.reject(e);
    this.closed = true;
  }
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
  readonly kind?: WorkerFailureKind;
}

let shared: WorkerPool | undefined;

/** The process-wide pool (created on first use; idle workers never keep the process alive). */
export function sharedPool(): WorkerPool {
  if (shared === undefined || shared.isClosed) shared = new WorkerPool();
  return shared;
}

function defaultWorkers(): number {
  const n = Number.parseInt(process.env[WORKERS_ENV] ?? '', 10);
  if (Number.isInteger(n) && n > 0) return Math.min(n, 16);
  return Math.max(1, Math.min(os.availableParallelism(), 4));
}
