/**
 * Moving a remote entry's bytes: the download (parallel ranged GETs into one file) and the upload
 * (Azure block-blob PUTs to the signed URL, as `@actions/cache` makes them). The entry is the pack
 * itself (store/pack.ts): its frames are zstd already, so nothing is archived or compressed
 * again on the way.
 *
 * Both are bounded: an overall deadline (the caller's signal, from the `remote-timeout` input)
 * and a low-speed limit over the whole transfer. A size the service announces is untrusted: it is
 * checked against the caller's budget before the file is made, and the bytes that arrive are
 * counted against it. A failed download removes its file.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { errorMessage, RemoteError } from '../errors.js';
import { formatBytes } from '../util/bytes.js';
import { inParallel } from '../util/parallel.js';
import { DeadlineError, LOW_SPEED, sleep, SpeedWatch, type SpeedLimit } from './deadline.js';
import { get, send, type GetAnswer } from './http.js';
import { Progress } from './progress.js';

/** Size of each ranged GET, and how many run at once. */
export const RANGE_BYTES = 8 * 1024 * 1024;
export const DOWNLOAD_STREAMS = 8;
/** A download's body is written to its file in pieces of this size. */
const WRITE_PIECE_BYTES = 1024 * 1024;
/**
 * Uploads: one PUT up to SINGLE_PUT_BYTES (as the Azure SDK does for `@actions/cache`), else
 * blocks of BLOCK_BYTES, UPLOAD_STREAMS at once; either way sent as the pack is read.
 */
export const SINGLE_PUT_BYTES = 128 * 1024 * 1024;
export const BLOCK_BYTES = 32 * 1024 * 1024;
export const UPLOAD_STREAMS = 4;
/** Attempts per request (a range, a block) before the transfer fails. */
const ATTEMPTS = 3;
/** The storage API version sent with blob requests (what Azure needs for block lists). */
const AZURE_VERSION = '2023-11-03';

export interface TransferLimits {
  /** The overall deadline (aborts with a DeadlineError as its reason). */
  readonly signal?: AbortSignal;
  readonly speed?: SpeedLimit;
  /** Progress lines while it lasts (progress.ts). */
  readonly progress?: ProgressOptions;
}

/** How a transfer shows its progress. */
export interface ProgressOptions {
  /** The start of every line, e.g. `Runner cache: downloading <key>`. */
  readonly label: string;
  /** Time between lines; default PROGRESS_INTERVAL_MS (5 s). */
  readonly intervalMs?: number;
  /** Where lines go; default core.info. */
  readonly log?: (line: string) => void;
}

export interface DownloadBudget {
  /** The most bytes the entry may take. */
  readonly bytes: number;
  /** Why, for the message that refuses a larger one. */
  readonly reason: string;
}

/** One transfer's abort signal: its deadline, its low-speed limit, and its own failure. */
class Transfer {
  readonly controller = new AbortController();
  readonly signal: AbortSignal;
  private readonly watch: SpeedWatch;
  private progress: Progress | undefined;
  moved = 0;

  constructor(
    readonly what: string,
    private readonly limits: TransferLimits,
  ) {
    this.signal = limits.signal
      ? AbortSignal.any([this.controller.signal, limits.signal])
      : this.controller.signal;
    this.watch = new SpeedWatch(limits.speed ?? LOW_SPEED, what, (err) =>
      this.controller.abort(err),
    );
  }

  /** Starts the progress lines, once the size is known (or known to be unknown). */
  sized(total: number | undefined): void {
    const p = this.limits.progress;
    if (p === undefined || this.progress !== undefined) return;
    this.progress = new Progress(p.label, total, p.log, p.intervalMs);
    this.progress.add(this.moved);
  }

  add(n: number): void {
    this.moved += n;
    this.watch.add(n);
    this.progress?.add(n);
  }

  /** A range sent again: its bytes no longer count. */
  takeBack(n: number): void {
    this.moved -= n;
    this.progress?.add(-n);
  }

  stop(): void {
    this.watch.stop();
    this.progress?.done();
  }

  /** The error to throw for `err`: the deadline's when it fired, else a RemoteError. */
  failure(err: unknown, context: string): Error {
    if (this.signal.aborted) {
      const reason = this.signal.reason as Error;
      return reason.name === 'DeadlineError'
        ? new DeadlineError(`${reason.message}; ${this.moved} bytes moved`)
        : reason;
    }
    if (err instanceof Error && (err.name === 'RemoteError' || err.name === 'DeadlineError'))
      return err;
    return new RemoteError(`${context}: ${(err as Error).message}`);
  }

  /** `fn` up to ATTEMPTS times while it fails with something worth retrying. */
  async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (this.signal.aborted || attempt >= ATTEMPTS || !transient(err)) throw err;
        await sleep(500 * attempt, this.signal);
      }
    }
  }
}

/** Failures worth another attempt: the network, and 5xx/429 answers. */
class HttpStatusError extends RemoteError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function transient(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 429;
  return !(err instanceof RemoteError);
}

/** `bytes a-b/total` of a 206 answer. */
function contentRange(res: GetAnswer): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.header('content-range') ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}

/**
 * Writes a response body at `pos` in `fh`: exactly `expected` bytes, or (not `exact`: a length
 * nobody announced) at most that many; throws otherwise.
 */
async function bodyInto(
  res: GetAnswer,
  fh: FileHandle,
  pos: number,
  expected: number,
  t: Transfer,
  exact = true,
): Promise<void> {
  let got = 0;
  async function* counted(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      if (got + chunk.length > expected) {
        throw new RemoteError(
          exact
            ? `the download sent more than the ${expected} bytes it announced`
            : `the download ran past ${formatBytes(expected)}`,
        );
      }
      got += chunk.length;
      t.add(chunk.length);
      yield chunk;
    }
  }
  // Written a piece at a time: one write per small chunk of the body was thousands of calls
  // through the thread pool for an entry of a hundred MB.
  let at = pos;
  const size = Math.min(WRITE_PIECE_BYTES, Math.max(expected, 1));
  for await (const piece of inPieces(counted(res.body), size)) {
    let off = 0;
    while (off < piece.length) {
      const { bytesWritten } = await fh.write(piece, off, piece.length - off, at + off);
      off += bytesWritten;
    }
    at += piece.length;
  }
  if (exact && got !== expected) {
    throw new RemoteError(`the download ended after ${got} of ${expected} bytes`);
  }
}

function rangeHeader(start: number, end: number): Record<string, string> {
  return { Range: `bytes=${start}-${end}`, 'x-ms-version': AZURE_VERSION };
}

function refuseSize(total: number, budget: DownloadBudget): void {
  if (total > budget.bytes) {
    throw new RemoteError(
      `the entry is ${formatBytes(total)}, more than ${budget.reason}; not downloading it`,
    );
  }
}

/**
 * Downloads `url` to `dest`: a first ranged GET learns the size (checked against `budget` before
 * the file is made), the rest comes in parallel ranges. A server that ignores ranges (200) is
 * read as one stream, counted against the budget. Returns the bytes written.
 */
export async function download(
  url: string,
  dest: string,
  budget: DownloadBudget,
  limits: TransferLimits = {},
): Promise<number> {
  const t = new Transfer('the download', limits);
  let fh: FileHandle | undefined;
  try {
    const first = await t.retrying(async () => {
      const res = await get(url, rangeHeader(0, RANGE_BYTES - 1), t.signal);
      if (res.status !== 200 && res.status !== 206) {
        await res.discard();
        throw new HttpStatusError(`the download answered HTTP ${res.status}`, res.status);
      }
      return res;
    });
    if (first.status === 200) {
      // A server without ranges: one stream, as long as it says (or within the budget).
      const declared = Number(first.header('content-length') ?? NaN);
      if (Number.isFinite(declared)) refuseSize(declared, budget);
      t.sized(Number.isFinite(declared) ? declared : undefined);
      fh = await fs.open(dest, 'w');
      const known = Number.isFinite(declared);
      await bodyInto(first, fh, 0, known ? declared : budget.bytes, t, known);
      return t.moved;
    }
    const range = contentRange(first);
    if (!range || range.start !== 0 || range.end >= range.total) {
      throw new RemoteError('the download answered a range it was not asked for');
    }
    const total = range.total;
    refuseSize(total, budget);
    t.sized(total);
    fh = await fs.open(dest, 'w');
    const handle = fh;
    const firstLen = range.end + 1;
    /** Range [start, end] into the file: `res` when given (its first attempt), else a GET. */
    const fetchRange = (start: number, end: number, res?: GetAnswer): Promise<void> => {
      let given = res;
      return t.retrying(async () => {
        const r = given ?? (await get(url, rangeHeader(start, end), t.signal));
        given = undefined;
        const cr = contentRange(r);
        if (r.status !== 206 || !cr || cr.start !== start || cr.end !== end || cr.total !== total) {
          await r.discard();
          throw new HttpStatusError(
            `the download answered HTTP ${r.status} for bytes ${start}-${end}`,
            r.status === 206 ? 502 : r.status,
          );
        }
        const before = t.moved;
        try {
          await bodyInto(r, handle, start, end - start + 1, t);
        } catch (err) {
          t.takeBack(t.moved - before); // a retry sends the range again
          throw err;
        }
      });
    };
    const jobs = [() => fetchRange(0, firstLen - 1, first)];
    for (let start = firstLen; start < total; start += RANGE_BYTES) {
      const end = Math.min(start + RANGE_BYTES, total) - 1;
      jobs.push(() => fetchRange(start, end));
    }
    await inParallel(jobs, DOWNLOAD_STREAMS, (job) => job());
    return total;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    fh = undefined;
    await fs.rm(dest, { force: true });
    throw t.failure(err, 'the download failed');
  } finally {
    await fh?.close();
    t.stop();
  }
}

/**
 * One PUT that must answer 201, retried. `body` makes the body afresh for each attempt; a
 * streamed range of the file counts its bytes as they go (and takes them back on a retry).
 */
async function put(
  url: string,
  body: () => {
    data: Uint8Array | string | AsyncIterable<Uint8Array>;
    sent: () => number;
    /** What broke the body's own source, if it did (not worth another attempt). */
    failure?: () => unknown;
  },
  headers: Record<string, string>,
  t: Transfer,
  what: string,
): Promise<void> {
  await t.retrying(async () => {
    const b = body();
    try {
      const res = await send(url, {
        method: 'PUT',
        headers: { 'x-ms-version': AZURE_VERSION, ...headers },
        body: b.data,
        signal: t.signal,
      });
      if (res.status !== 201) {
        const code = /<Code>([^<]*)<\/Code>/.exec(res.text)?.[1];
        throw new HttpStatusError(
          `${what} answered HTTP ${res.status}${code ? ` (${code})` : ''}`,
          res.status,
        );
      }
    } catch (err) {
      t.takeBack(b.sent());
      const own = b.failure?.();
      // The body's own source broke (a blob that fails its check): not worth another attempt.
      if (own !== undefined) throw new RemoteError(`reading what to send: ${errorMessage(own)}`);
      throw err;
    }
  });
}

/** What `source` yields (read anew for each attempt), counted by `t` as it is sent. */
function streamBody(source: () => AsyncIterable<Uint8Array>, t: Transfer) {
  return () => {
    let sent = 0;
    let failure: unknown;
    async function* counted(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of source()) {
          sent += chunk.length;
          t.add(chunk.length);
          yield chunk;
        }
      } catch (err) {
        failure = err;
        throw err;
      }
    }
    return { data: counted(), sent: () => sent, failure: () => failure };
  };
}

/** A block held in memory, counted by `t` once it is sent (taken back on a retry). */
function bufferBody(data: Uint8Array, t: Transfer) {
  return () => {
    t.add(data.length);
    return { data, sent: () => data.length };
  };
}

function fixedBody(data: string) {
  return () => ({ data, sent: () => 0 });
}

/** `url` with one more query parameter (the signed URL's own stay as they are). */
function withQuery(url: string, extra: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${extra}`;
}

function blockId(n: number): string {
  // Every id of one blob has the same length (Azure's rule).
  return Buffer.from(`clyde-${String(n).padStart(8, '0')}`).toString('base64');
}

/** What an upload sends: its size, known first, and its bytes (read anew by each call). */
export interface UploadSource {
  readonly bytes: number;
  pieces(): AsyncIterable<Uint8Array>;
}

/**
 * Uploads `source` to a signed blob URL as it is read: one streamed PUT up to `sizes.singlePut`,
 * else blocks of `sizes.block` (UPLOAD_STREAMS at once: the reading waits while as many are in
 * flight) committed by a block list. Memory stays a few blocks whatever the size. Returns the
 * bytes uploaded. When the source throws, or yields other than `bytes` bytes, nothing is
 * committed: the blob the URL names never holds what was sent.
 */
export async function upload(
  url: string,
  source: UploadSource,
  limits: TransferLimits = {},
  sizes = { singlePut: SINGLE_PUT_BYTES, block: BLOCK_BYTES },
): Promise<number> {
  const t = new Transfer('the upload', limits);
  t.sized(source.bytes);
  const ids: string[] = [];
  const inflight = new Set<Promise<void>>();
  let failed: { err: unknown } | undefined;
  const length = (n: number): Record<string, string> => ({ 'content-length': String(n) });
  const sendBlock = async (data: Buffer): Promise<void> => {
    const n = ids.length;
    const id = blockId(n);
    ids.push(id);
    const blockUrl = withQuery(url, `comp=block&blockid=${encodeURIComponent(id)}`);
    const sent = put(blockUrl, bufferBody(data, t), length(data.length), t, `block ${n}`).catch(
      (err: unknown) => {
        failed ??= { err };
        t.controller.abort(err);
      },
    );
    inflight.add(sent);
    void sent.finally(() => inflight.delete(sent));
    while (inflight.size >= UPLOAD_STREAMS) await Promise.race(inflight);
    if (failed) throw failed.err;
  };
  try {
    if (source.bytes <= sizes.singlePut) {
      const headers = { 'x-ms-blob-type': 'BlockBlob', ...length(source.bytes) };
      const body = streamBody(() => exactly(source.pieces(), source.bytes), t);
      await put(url, body, headers, t, 'the upload');
      return source.bytes;
    }
    for await (const block of inPieces(exactly(source.pieces(), source.bytes), sizes.block)) {
      await sendBlock(block);
    }
    await Promise.all(inflight);
    if (failed) throw failed.err;
    const list =
      '<?xml version="1.0" encoding="utf-8"?><BlockList>' +
      ids.map((id) => `<Latest>${id}</Latest>`).join('') +
      '</BlockList>';
    const xml = { 'content-type': 'application/xml' };
    await put(withQuery(url, 'comp=blocklist'), fixedBody(list), xml, t, 'the block list');
    return source.bytes;
  } catch (err) {
    // Blocks still in flight are stopped and awaited: nothing runs on after this returns.
    if (!t.signal.aborted) t.controller.abort(err);
    await Promise.allSettled(inflight);
    throw t.failure(failed?.err ?? err, 'the upload failed');
  } finally {
    t.stop();
  }
}

/** What `source` yields, cut and joined into pieces of `size` bytes (the last may be shorter). */
async function* inPieces(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const chunk of source) {
    for (let at = 0; at < chunk.length;) {
      const n = Math.min(chunk.length - at, size - fill);
      buf.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/** The pieces of `source`, which must come to `bytes` in all (else it throws, at the end). */
async function* exactly(
  source: AsyncIterable<Uint8Array>,
  bytes: number,
): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const piece of source) {
    n += piece.length;
    if (n > bytes) throw new RemoteError(`the pack grew past its ${bytes} bytes while it was sent`);
    yield piece;
  }
  if (n !== bytes) throw new RemoteError(`the pack ended at ${n} of its ${bytes} bytes`);
}
