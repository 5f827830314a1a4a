/**
 * The store's worker pool: it hashes, compresses, decompresses, verifies and writes files off
 * the main thread, which loads no zstd backend of its own. The workers run store-worker.js,
 * started from the file beside this module's (beside the bundle's index.js in dist/<entry>/,
 * where scripts/bundle.ts puts it); every message is a StoreRequest or StoreReply
 * (worker-protocol.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../errors.js';
import type {
  ArgsOf,
  ResultOf,
  StoreOp,
  StoreReply,
  StoreRequest,
  StoreWorkerData,
  WorkerFailureKind,
} from './worker-protocol.js';

export { MIN_SAVING } from './codec-rules.js';
export { STREAM_AT } from './worker-protocol.js';
export type { PoolDirs, WorkerFailureKind } from './worker-protocol.js';

/** The environment variable that picks the workers' backend: `node` forces node:zlib. */
export const BACKEND_ENV = 'CLYDE_ZSTD_BACKEND';
/**
 * A backend to force (tests): `native` requires zstd-napi's binary, `node` uses node:zlib;
 * none: zstd-napi where its binary is found and loads, else node:zlib.
 */
export type Backend = 'native' | 'node';
/** Environment variable: the number of worker threads (default: cores, at most 4). */
export const WORKERS_ENV = 'CLYDE_STORE_WORKERS';

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
 * environment forces node:zlib (a forced `native` backend ignores the environment).
 */
export function nativeBindingPath(backend?: Backend): string | undefined {
  if (backend === 'node') return undefined;
  if (backend === undefined && (process.env[BACKEND_ENV] ?? '').trim().toLowerCase() === 'node') {
    return undefined;
  }
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

/**
 * The worker's module: store-worker.js beside this file, found by a path relative to it (in
 * the bundle, `import.meta.url` is dist/<entry>/index.js, and the worker is bundled beside it).
 */
export function storeWorkerPath(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'store-worker.js');
}

interface Job {
  readonly op: StoreOp;
  readonly args: ArgsOf<StoreOp>;
  readonly priority: number;
  readonly transfer: readonly ArrayBuffer[];
  readonly p: Pending;
}

/**
 * A fixed set of worker threads for one store; jobs queue and go to the next idle worker.
 * Workers are unref'd while idle, so an idle pool never keeps the process alive.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;

  constructor(size = defaultWorkers(), backend?: Backend) {
    const binding = nativeBindingPath(backend);
    if (backend === 'native' && binding === undefined) {
      throw new StoreError('zstd-napi is not available: its binary was not found');
    }
    const workerData: StoreWorkerData = { binding };
    const file = storeWorkerPath();
    for (let i = 0; i < size; i++) {
      const worker = new Worker(file, { workerData });
      worker.unref();
      const ready = new Promise<string>((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', (m: StoreReply) => {
          if (m.type !== 'ready') {
            reject(new StoreError(`store worker answered before it was ready (${m.type})`));
          } else if (backend === 'native' && m.backend !== 'zstd-napi') {
            reject(new StoreError('zstd-napi is not available: its binary will not load'));
          } else resolve(m.backend);
        });
      });
      const slot: Slot = { worker, ready, inflight: 0, online: false };
      worker.on('error', (err) => this.failAll(err));
      ready.then(
        () => {
          slot.online = true;
          worker.on('message', (m: StoreReply) => this.onReply(slot, m));
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
  run<K extends StoreOp>(
    op: K,
    args: ArgsOf<K>,
    priority = 0,
    transfer: readonly ArrayBuffer[] = [],
  ): Promise<ResultOf<K>> {
    if (this.closed) return Promise.reject(new StoreError('the store worker pool is closed'));
    return new Promise<ResultOf<K>>((resolve, reject) => {
      // (The reply to this job's id is this op's: the worker answers each request with its own.)
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject };
      const job: Job = { op, args, priority, transfer, p };
      let i = this.queue.length;
      while (i > 0 && (this.queue[i - 1] as Job).priority < priority) i--;
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

  private send(slot: Slot, job: Job): void {
    const id = this.seq++;
    slot.inflight++;
    slot.worker.ref();
    this.pending.set(id, job.p);
    const msg = { id, op: job.op, args: job.args } as StoreRequest;
    const transfer = job.transfer as ArrayBuffer[];
    if (slot.online) slot.worker.postMessage(msg, transfer);
    // (A worker that never comes online has failed every job already: failAll.)
    else {
      slot.ready.then(
        () => slot.worker.postMessage(msg, transfer),
        () => undefined,
      );
    }
  }

  private onReply(slot: Slot, m: StoreReply): void {
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    slot.inflight--;
    if (slot.inflight === 0) slot.worker.unref();
    if (p !== undefined) {
      if (m.type === 'done') p.resolve(m.result);
      else p.reject(new WorkerOpError(m.error, m.kind));
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

const shared = new Map<Backend | undefined, WorkerPool>();

/**
 * The process-wide pool (created on first use; idle workers never keep the process alive); one
 * per forced backend.
 */
export function sharedPool(backend?: Backend): WorkerPool {
  let pool = shared.get(backend);
  if (pool === undefined || pool.isClosed) {
    pool = new WorkerPool(defaultWorkers(), backend);
    shared.set(backend, pool);
  }
  return pool;
}

function defaultWorkers(): number {
  const n = Number.parseInt(process.env[WORKERS_ENV] ?? '', 10);
  if (Number.isInteger(n) && n > 0) return Math.min(n, 16);
  return Math.max(1, Math.min(os.availableParallelism(), 4));
}
