/**
 * The GitHub REST client of the gc sub-action: the one file that imports @actions/github
 * (STYLE.md habit 8). It lists, measures and deletes the repository's runner caches and looks up
 * pull request states; the rest of the code sees the small CacheApi interface.
 *
 * Every request goes through one retry wrapper: rate limits (429, or 403 with retry-after or
 * x-ratelimit-remaining: 0) and 5xx are retried a few times, waiting what retry-after or
 * x-ratelimit-reset says (capped) or a doubling back-off; a try that gets no answer within
 * REQUEST_TIMEOUT_MS is given up, not retried. A token that may not list or delete
 * caches is a configuration problem: an InputError naming `token` and the permission needed.
 */
import * as core from '@actions/core';
import { getOctokit } from '@actions/github';
import { InputError, RemoteError, errorMessage } from '../errors.js';
import { fetch } from './http.js';

export interface RestCacheEntry {
  readonly id: number;
  readonly ref: string;
  readonly key: string;
  readonly version: string;
  readonly sizeBytes: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly lastAccessedAt: number;
}

export type PullState = 'open' | 'closed' | 'merged';

export interface CacheApi {
  /** Every cache of the repository (all pages), optionally only keys starting with a prefix. */
  listCaches(keyPrefix?: string): Promise<RestCacheEntry[]>;
  /** Deletes one cache; false when it was already gone. */
  deleteCache(id: number): Promise<boolean>;
  usage(): Promise<{ sizeBytes: number; count: number }>;
  /** undefined when the pull request does not exist (or is not visible to the token). */
  pullRequestState(n: number): Promise<PullState | undefined>;
}

export interface RetryOptions {
  /** Attempts per request, the first included; default 4. */
  readonly tries?: number;
  /** First back-off when no header says how long to wait; doubles per try. Default 1000 ms. */
  readonly baseDelayMs?: number;
  /** Longest single wait, whatever a header says; default 60 s. */
  readonly maxDelayMs?: number;
}

export interface RestOptions extends RetryOptions {
  /** How long one request (one try) may take before it is given up; default REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  readonly token: string;
  /** GITHUB_API_URL. */
  readonly apiUrl: string;
  /** owner/name. */
  readonly repository: string;
}

/**
 * One REST request's time (a try: retries start again): a service that stops answering ends the
 * gc step's work on that target with a warning instead of holding the job until its own timeout.
 */
export const REQUEST_TIMEOUT_MS = 60_000;

export const PERMISSION_HINT =
  'the workflow (or job) needs `permissions: actions: write` for the token to list and delete caches';

interface HttpErrorLike {
  status: number;
  response?: { headers?: Record<string, string | number | undefined> };
}

function httpError(err: unknown): HttpErrorLike | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' ? (err as HttpErrorLike) : undefined;
}

function header(err: HttpErrorLike, name: string): string | undefined {
  const v = err.response?.headers?.[name];
  return v === undefined ? undefined : String(v);
}

/** A 429, or a 403 that says it is a rate limit. */
export function isRateLimited(err: HttpErrorLike): boolean {
  if (err.status === 429) return true;
  return (
    err.status === 403 &&
    (header(err, 'retry-after') !== undefined || header(err, 'x-ratelimit-remaining') === '0')
  );
}

/** How long to wait before retrying `err` (try `attempt`, from 1), or undefined: do not retry. */
export function retryDelayMs(
  err: HttpErrorLike,
  attempt: number,
  opts: Required<RetryOptions>,
  now: number = Date.now(),
): number | undefined {
  const transient = isRateLimited(err) || err.status >= 500;
  if (!transient || attempt >= opts.tries) return undefined;
  let wait = opts.baseDelayMs * 2 ** (attempt - 1);
  const retryAfter = header(err, 'retry-after');
  const reset = header(err, 'x-ratelimit-reset');
  if (retryAfter !== undefined && /^\d+$/.test(retryAfter)) wait = Number(retryAfter) * 1000;
  else if (isRateLimited(err) && reset !== undefined && /^\d+$/.test(reset)) {
    wait = Math.max(0, Number(reset) * 1000 - now);
  }
  return Math.min(wait, opts.maxDelayMs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function openCacheApi(opts: RestOptions): CacheApi {
  const retry: Required<RetryOptions> = {
    tries: Math.max(1, opts.tries ?? 4),
    baseDelayMs: opts.baseDelayMs ?? 1000,
    maxDelayMs: opts.maxDelayMs ?? 60_000,
  };
  const [owner = '', repo = ''] = opts.repository.split('/');
  // Our transport (http.ts), so the proxy is chosen for this API URL, not the default one; each
  // try has its own time (a signal given to octokit's request hook would not reach the fetch).
  const timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const timedFetch: typeof fetch = async (input, init) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      return await fetch(input, { ...init, signal });
    } catch (err) {
      if (!signal.aborted) throw err;
      const url = typeof input === 'string' ? input : input.href;
      throw new RemoteError(
        `${init?.method ?? 'GET'} ${url}: no answer within ${Math.ceil(timeoutMs / 1000)} s`,
      );
    }
  };
  const octokit = getOctokit(opts.token, {
    baseUrl: opts.apiUrl.replace(/\/+$/, ''),
    request: { fetch: timedFetch },
  });

  octokit.hook.wrap('request', async (request, options) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request(options);
      } catch (err) {
        // (octokit reports any failure of the fetch as a 500: a timeout is not retried.)
        const cause = (err as { cause?: unknown } | null)?.cause;
        if (cause instanceof RemoteError) throw cause;
        const http = httpError(err);
        const wait = http ? retryDelayMs(http, attempt, retry) : undefined;
        if (wait === undefined) throw err;
        core.info(
          `GitHub API ${options.method} ${options.url}: ${http?.status}, retrying in ${Math.ceil(wait / 1000)} s (try ${attempt + 1} of ${retry.tries})`,
        );
        await sleep(wait);
      }
    }
  });

  const fail = (what: string, err: unknown, permissionStatuses: readonly number[]): never => {
    const http = httpError(err);
    if (
      http &&
      (http.status === 401 || (permissionStatuses.includes(http.status) && !isRateLimited(http)))
    ) {
      throw new InputError(
        'token',
        `${what} was refused (${http.status}${http.status === 401 ? ', bad credentials' : ''}): ${PERMISSION_HINT}.`,
      );
    }
    throw new RemoteError(`${what} failed: ${errorMessage(err)}`);
  };

  return {
    async listCaches(keyPrefix) {
      try {
        const items = await octokit.paginate('GET /repos/{owner}/{repo}/actions/caches', {
          owner,
          repo,
          per_page: 100,
          sort: 'created_at',
          direction: 'asc',
          ...(keyPrefix ? { key: keyPrefix } : {}),
        });
        return items.map((c) => ({
          id: c.id ?? 0,
          ref: c.ref ?? '',
          key: c.key ?? '',
          version: c.version ?? '',
          sizeBytes: c.size_in_bytes ?? 0,
          createdAt: Date.parse(c.created_at ?? '') || 0,
          lastAccessedAt: Date.parse(c.last_accessed_at ?? '') || 0,
        }));
      } catch (err) {
        return fail(`Listing the caches of ${opts.repository}`, err, [403, 404]);
      }
    },

    async deleteCache(id) {
      try {
        await octokit.request('DELETE /repos/{owner}/{repo}/actions/caches/{cache_id}', {
          owner,
          repo,
          cache_id: id,
        });
        return true;
      } catch (err) {
        if (httpError(err)?.status === 404) return false;
        return fail(`Deleting cache ${id}`, err, [403]);
      }
    },

    async usage() {
      try {
        const { data } = await octokit.request('GET /repos/{owner}/{repo}/actions/cache/usage', {
          owner,
          repo,
        });
        return {
          sizeBytes: data.active_caches_size_in_bytes,
          count: data.active_caches_count,
        };
      } catch (err) {
        return fail(`Reading the cache usage of ${opts.repository}`, err, [403, 404]);
      }
    },

    async pullRequestState(n) {
      try {
        const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
          owner,
          repo,
          pull_number: n,
        });
        if (data.merged === true || data.merged_at) return 'merged';
        return data.state === 'closed' ? 'closed' : 'open';
      } catch (err) {
        if (httpError(err)?.status === 404) return undefined;
        throw new RemoteError(`Looking up pull request #${n} failed: ${errorMessage(err)}`);
      }
    },
  };
}
