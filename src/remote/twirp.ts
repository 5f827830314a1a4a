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

/** The cache version @actions/cache computes for `saveCache([PACK_NAME], key)`. */
export function cacheVersion(compression: Compression, platform = process.platform): string {
  const parts = [PACK_NAME, compression];
  if (platform === 'win32') parts.push('windows-only');
  parts.push(VERSION_SALT);
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

interface TwirpOptions {
  readonly retries?: number;
  readonly backoffMs?: number;
  readonly timeoutMs?: number;
}

async function twirp(
  env: ServiceEnv,
  method: string,
  body: unknown,
  opts: TwirpOptions = {},
): Promise<Record<string, unknown>> {
  const url = new URL(`/twirp/${SERVICE}/${method}`, env.baseUrl).href;
  const retries = opts.retries ?? 2;
  let lastError: Error = new RemoteError(`${method} was not attempted`);
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep((opts.backoffMs ?? 500) * attempt);
    let res: Response;
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
        signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      lastError = new RemoteError(`${method} failed: ${(err as Error).message}`);
      continue;
    }
    const text = await res.text();
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
    let msg = text.slice(0, 200);
    try {
      const j = JSON.parse(text) as { msg?: string; code?: string };
      msg = `${j.code ?? ''} ${j.msg ?? ''}`.trim();
    } catch {
      // keep the raw text
    }
    lastError = new RemoteError(`${method} answered HTTP ${res.status}: ${msg}`);
    // Retry what the service marks as transient; 429 means back off for this run.
    if (![500, 502, 503, 504].includes(res.status)) break;
  }
  throw lastError;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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
): Promise<RemoteHit | undefined> {
  const res = await twirp(env, 'GetCacheEntryDownloadURL', {
    key,
    restore_keys: restoreKeys,
    version: cacheVersion(compression),
  });
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

/**
 * Stream the entry's archive to `dest`. A download that stalls for `idleMs`, ends early, or
 * answers anything but 200 throws; a partial file is removed.
 */
export async function download(url: string, dest: string, idleMs = 60_000): Promise<number> {
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), idleMs);
  let received = 0;
  let expected = NaN;
  try {
    const res = await fetch(url, { signal: controller.signal });
    if (res.status !== 200 || !res.body) {
      throw new RemoteError(`download answered HTTP ${res.status}`);
    }
    expected = Number(res.headers.get('content-length') ?? NaN);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), idleMs);
        received += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(
      Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]),
      counter,
      createWriteStream(dest),
    );
    if (Number.isFinite(expected) && received !== expected) {
      throw new RemoteError(`download ended after ${received} of ${expected} bytes`);
    }
    return received;
  } catch (err) {
    await fs.rm(dest, { force: true });
    if (err instanceof RemoteError) throw err;
    const e = err as Error;
    if (controller.signal.aborted) throw new RemoteError(`download stalled for ${idleMs} ms`);
    throw new RemoteError(
      Number.isFinite(expected)
        ? `download failed after ${received} of ${expected} bytes: ${e.message}`
        : `download failed: ${e.message}`,
    );
  } finally {
    clearTimeout(timer);
  }
}
