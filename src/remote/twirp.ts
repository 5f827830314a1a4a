/**
 * The lookup and download half of the runner cache protocol, spoken directly so that the entry's
 * archive can be inspected before anything is written (the official client extracts with
 * `tar -P` and checks no member names). Saving goes through `@actions/cache` (actions-cache.ts).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RemoteError } from '../errors.js';
import { DeadlineError, LOW_SPEED, sleep, SpeedWatch, type SpeedLimit } from './deadline.js';
import { fetch } from './http.js';
import { Progress } from './progress.js';

const SERVICE = 'github.actions.results.api.v1.CacheService';
/** The single file a remote entry holds, and the path string its version is computed from. */
export const PACK_NAME = 'clyde.pack';
const VERSION_SALT = '1.0';

export type Compression = 'zstd-without-long' | 'gzip';

export interface RemoteHit {
  readonly matchedKey: string;
  readonly url: string;
  readonly compression: Compression;
}

export interface ServiceEnv {
  readonly baseUrl: string;
  readonly token: string;
}

/** The runner gives JavaScript actions these; without them there is no remote tier. */
export function serviceEnv(env = process.env): ServiceEnv | undefined {
  const baseUrl = env['ACTIONS_RESULTS_URL'];
  const token = env['ACTIONS_RUNTIME_TOKEN'];
  if (!baseUrl || !token || !env['ACTIONS_CACHE_SERVICE_V2']) return undefined;
  return { baseUrl, token };
}

/** As @actions/cache decides it: zstd when `zstd --quiet --version` prints anything. */
export function compressionMethod(): Compression {
  try {
    const r = spawnSync('zstd', ['--quiet', '--version'], { encoding: 'utf8', timeout: 10_000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() === '' ? 'gzip' : 'zstd-without-long';
  } catch {
    return 'gzip';
  }
}

/**
 * The cache version @actions/cache computes for `saveCache([PACK_NAME], key, {},
 * crossOs)`. The service matches keys and restore keys only among entries of one version, and
 * on Windows the client adds `windows-only` unless told the archive may cross OSes: so without
 * `crossOs`, Windows entries and Linux/macOS entries never match each other. Our archive (one
 * pack file, paths recorded posix) reads the same everywhere, so `crossOs` (the `cross-os`
 * input) drops that part; on Linux and macOS it changes nothing.
 */
export function cacheVersion(
  compression: Compression,
  platform: NodeJS.Platform = process.platform,
  crossOs = false,
): string {
  const parts = [PACK_NAME, compression];
  if (platform === 'win32' && !crossOs) parts.push('windows-only');
  parts.push(VERSION_SALT);
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

interface TwirpOptions {
  readonly retries?: number;
  readonly backoffMs?: number;
  /** Bound on one attempt. */
  readonly timeoutMs?: number;
  /** The operation's overall deadline: bounds every attempt and the waits between them. */
  readonly signal?: AbortSignal;
}

/**
 * The message of an error body: Twirp's `{code, msg}`, else the `message` (or `error`) of
 * another JSON body such as `{"message":"Bad credentials"}`, else the text itself.
 */
export function errorBodyMessage(text: string): string {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return text.slice(0, 200).trim();
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) return text.slice(0, 200).trim();
  const o = j as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const twirp = `${str(o['code'])} ${str(o['msg'])}`.trim();
  const other = str(o['message']) || str(o['error_description']) || str(o['error']);
  return (twirp || other || text).slice(0, 200).trim();
}

async function twirp(
  env: ServiceEnv,
  method: string,
  body: unknown,
  opts: TwirpOptions = {},
): Promise<Record<string, unknown>> {
  const url = new URL(`/twirp/${SERVICE}/${method}`, env.baseUrl).href;
  const retries = opts.retries ?? 2;
  const overall = opts.signal;
  let lastError: Error = new RemoteError(`${method} was not attempted`);
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep((opts.backoffMs ?? 500) * attempt, overall);
    const attemptSignal = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          Authorization: `Bearer ${env.token}`,
          'User-Agent': 'clyde-cache',
        },
        body: JSON.stringify(body),
        signal: overall ? AbortSignal.any([overall, attemptSignal]) : attemptSignal,
      });
      text = await res.text();
    } catch (err) {
      if (overall?.aborted) throw overall.reason as Error;
      lastError = new RemoteError(`${method} failed: ${(err as Error).message}`);
      continue;
    }
    if (res.ok) {
      try {
        return JSON.parse(text === '' ? '{}' : text) as Record<string, unknown>;
      } catch {
        lastError = new RemoteError(
          `${method} answered ${res.status} with a body that is not JSON`,
        );
        continue;
      }
    }
    lastError = new RemoteError(
      `${method} answered HTTP ${res.status}: ${errorBodyMessage(text) || res.statusText}`,
    );
    // Retry what the service marks as transient; 429 means back off for this run.
    if (![500, 502, 503, 504].includes(res.status)) break;
  }
  throw lastError;
}

/**
 * Ask the service for `key`, then the `restoreKeys` prefixes (the service matches: exact, newest
 * prefix of the key, then each restore key). Undefined is a miss.
 */
export async function lookup(
  env: ServiceEnv,
  key: string,
  restoreKeys: readonly string[],
  compression: Compression = compressionMethod(),
  signal?: AbortSignal,
  crossOs = false,
): Promise<RemoteHit | undefined> {
  const res = await twirp(
    env,
    'GetCacheEntryDownloadURL',
    {
      key,
      restore_keys: restoreKeys,
      version: cacheVersion(compression, process.platform, crossOs),
    },
    signal ? { signal } : {},
  );
  const url = res['signed_download_url'];
  const matched = res['matched_key'];
  if (res['ok'] !== true || typeof url !== 'string' || typeof matched !== 'string' || url === '') {
    return undefined;
  }
  if (
    matched !== key &&
    !restoreKeys.some((k) => matched.startsWith(k)) &&
    !matched.startsWith(key)
  ) {
    throw new RemoteError(
      `the service matched '${matched}', which fits neither the key nor a restore key`,
    );
  }
  return { matchedKey: matched, url, compression };
}

/** How long a download may take: its overall deadline and its low-speed limit. */
export interface TransferLimits {
  /** The overall deadline (aborts with a DeadlineError as its reason). */
  readonly signal?: AbortSignal;
  readonly speed?: SpeedLimit;
}

/** How a download shows its progress (see progress.ts). */
export interface ProgressOptions {
  /** The start of every line, e.g. `Downloading <key>`. */
  readonly label: string;
  /** Time between lines; default PROGRESS_INTERVAL_MS (5 s). */
  readonly intervalMs?: number;
  /** Where lines go; default core.info. */
  readonly log?: (line: string) => void;
}

/**
 * Stream the entry's archive to `dest`, logging its progress every few seconds. A download that
 * goes slower than the speed limit (a stall, or a trickle), outlives its deadline, ends early,
 * or answers anything but 200 throws; a partial file is removed.
 */
export async function download(
  url: string,
  dest: string,
  limits: TransferLimits = {},
  progress: ProgressOptions = { label: 'Downloading' },
): Promise<number> {
  const controller = new AbortController();
  const signal = limits.signal
    ? AbortSignal.any([controller.signal, limits.signal])
    : controller.signal;
  const watch = new SpeedWatch(limits.speed ?? LOW_SPEED, 'the download', (err) =>
    controller.abort(err),
  );
  let received = 0;
  let expected = NaN;
  let shown: Progress | undefined;
  try {
    const res = await fetch(url, { signal });
    if (res.status !== 200 || !res.body) {
      throw new RemoteError(`download answered HTTP ${res.status}`);
    }
    expected = Number(res.headers.get('content-length') ?? NaN);
    shown = new Progress(
      progress.label,
      Number.isFinite(expected) ? expected : undefined,
      progress.log,
      progress.intervalMs,
    );
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        watch.add(chunk.length);
        shown?.add(chunk.length);
        received += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(
      Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]),
      counter,
      createWriteStream(dest),
      { signal },
    );
    if (Number.isFinite(expected) && received !== expected) {
      throw new RemoteError(`download ended after ${received} of ${expected} bytes`);
    }
    return received;
  } catch (err) {
    await fs.rm(dest, { force: true });
    if (err instanceof RemoteError) throw err;
    if (signal.aborted) {
      const reason = signal.reason as Error;
      throw reason.name === 'DeadlineError'
        ? new DeadlineError(`${reason.message}; ${received} bytes received`)
        : reason;
    }
    const e = err as Error;
    throw new RemoteError(
      Number.isFinite(expected)
        ? `download failed after ${received} of ${expected} bytes: ${e.message}`
        : `download failed: ${e.message}`,
    );
  } finally {
    watch.stop();
    shown?.done();
  }
}
