/**
 * The runner cache service's calls, spoken directly: lookups, reserving an entry and finalizing
 * it. An entry's bytes are our pack, moved by transfer.ts; the archive `@actions/cache` would make
 * (a tar, compressed again) is never made, and never read: the entry is inspected before anything
 * is written.
 */
import { createHash } from 'node:crypto';
import { RemoteError } from '../errors.js';
import { PACK_VERSION } from '../store/pack.js';
import { sleep } from './deadline.js';
import { fetch } from './http.js';

const SERVICE = 'github.actions.results.api.v1.CacheService';

/**
 * A layer entry (an incremental save: only the blobs its base lacks) is saved under its key,
 * this mark and its base's key, so that its base can be read from the key alone: by a restore,
 * and by the gc sub-action, which keeps a base while a layer needs it. The service's prefix
 * match finds `K<mark>B` for a lookup of K. Key parts never hold a '-' followed by '@'.
 */
export const LAYER_MARK = '-@layer-on-';
/** GitHub's limit on a cache key's length. */
export const MAX_KEY_LENGTH = 512;

/** The remote key of a layer of `key` over the full entry `base`; undefined when too long. */
export function layerKey(key: string, base: string): string | undefined {
  if (key.includes(LAYER_MARK) || base.includes(LAYER_MARK)) return undefined;
  const k = `${key}${LAYER_MARK}${base}`;
  return k.length <= MAX_KEY_LENGTH ? k : undefined;
}

/** A remote key read back: the entry's own key, and its base's when it is a layer. */
export function parseRemoteKey(remoteKey: string): { key: string; base?: string } {
  const at = remoteKey.indexOf(LAYER_MARK);
  if (at <= 0) return { key: remoteKey };
  const base = remoteKey.slice(at + LAYER_MARK.length);
  return base === '' ? { key: remoteKey } : { key: remoteKey.slice(0, at), base };
}

export interface RemoteHit {
  /** The entry's own key (a layer's without its mark and base). */
  readonly matchedKey: string;
  /** The key as the service holds it. */
  readonly remoteKey: string;
  /** A layer's base entry (a full entry), whose blobs the layer does not carry. */
  readonly base?: string;
  readonly url: string;
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

/**
 * The version our entries are saved and looked up under. The service matches keys and restore
 * keys only among entries of one version, so this keeps our packs and other tools' archives
 * apart both ways: `@actions/cache` hashes path strings, a compression method and `1.0`, never
 * this text. The pack format's version is part of it (a format change is a clean miss), and, as
 * `@actions/cache` does, Windows entries are kept apart unless `crossOs` (the `cross-os` input):
 * our pack (paths recorded posix) reads the same everywhere.
 */
export function cacheVersion(
  platform: NodeJS.Platform = process.platform,
  crossOs = false,
): string {
  const parts = ['clyde-cache', `pack-${PACK_VERSION}`];
  if (platform === 'win32' && !crossOs) parts.push('windows-only');
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
  signal?: AbortSignal,
  crossOs = false,
): Promise<RemoteHit | undefined> {
  const res = await twirp(
    env,
    'GetCacheEntryDownloadURL',
    {
      key,
      restore_keys: restoreKeys,
      version: cacheVersion(process.platform, crossOs),
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
  const own = parseRemoteKey(matched);
  return {
    matchedKey: own.key,
    remoteKey: matched,
    ...(own.base !== undefined ? { base: own.base } : {}),
    url,
  };
}

/** The `message` of an answer that is not ok. */
function reasonOf(res: Record<string, unknown>): string {
  const m = res['message'];
  return typeof m === 'string' && m !== '' ? m : 'no reason given';
}

/** A reservation: where to upload the entry's bytes. */
export interface Reservation {
  readonly uploadUrl: string;
  readonly version: string;
}

/**
 * Reserve `key`: the signed URL to upload to, or undefined when the entry exists already (saved
 * by another job in the meantime: not a failure). A token without write permission, a quota
 * error and the rest throw a RemoteError with the service's reason.
 */
export async function reserve(
  env: ServiceEnv,
  key: string,
  signal?: AbortSignal,
  crossOs = false,
): Promise<Reservation | undefined> {
  const version = cacheVersion(process.platform, crossOs);
  let res: Record<string, unknown>;
  try {
    res = await twirp(env, 'CreateCacheEntry', { key, version }, signal ? { signal } : {});
  } catch (err) {
    if (err instanceof RemoteError && /HTTP 409/.test(err.message)) return undefined;
    throw err;
  }
  const url = res['signed_upload_url'];
  if (res['ok'] !== true || typeof url !== 'string' || url === '') {
    throw new RemoteError(`the service did not reserve ${key}: ${reasonOf(res)}`);
  }
  return { uploadUrl: url, version };
}

/** Commit an uploaded entry of `sizeBytes`; throws a RemoteError when the service refuses. */
export async function finalize(
  env: ServiceEnv,
  key: string,
  r: Reservation,
  sizeBytes: number,
  signal?: AbortSignal,
): Promise<void> {
  const res = await twirp(
    env,
    'FinalizeCacheEntryUpload',
    { key, version: r.version, size_bytes: String(sizeBytes) },
    signal ? { signal } : {},
  );
  if (res['ok'] !== true) {
    throw new RemoteError(`the service did not finalize ${key}: ${reasonOf(res)}`);
  }
}
