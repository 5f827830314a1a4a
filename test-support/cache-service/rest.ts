/**
 * The REST half of the loopback cache service: the GitHub REST endpoints a cache GC uses, over
 * the service's own entries (key, version, scope = ref, size, created, last accessed), so the GC
 * runs end to end exactly as against api.github.com. Served under `<url>api/`:
 *
 *   GET    /repos/{owner}/{repo}/actions/caches        key (prefix), ref, sort, direction,
 *                                                      per_page (max 100), page; Link header
 *   DELETE /repos/{owner}/{repo}/actions/caches/{id}   204
 *   DELETE /repos/{owner}/{repo}/actions/caches?key=K[&ref=R]   200 with the deleted entries
 *   GET    /repos/{owner}/{repo}/actions/cache/usage
 *   GET    /repos/{owner}/{repo}/pulls/{n}             from the table set by setPullRequests
 *
 * Auth is `Authorization: Bearer <t>` or `token <t>` with a token from `restToken()`; a 'read'
 * token gets 403 on deletes, a 'none' token 404 on the cache endpoints (as GitHub answers a
 * token without `actions` access). Every answer carries x-ratelimit-* headers; a rate-limit
 * fault answers 429 (or 403 with x-ratelimit-remaining: 0) with retry-after / x-ratelimit-reset.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { drain, type ServiceContext } from './http.js';
import type { Entry, EntryStore } from './store.js';

export const API_PREFIX = '/api';

export type RestPermission = 'write' | 'read' | 'none';
export type PullRequestState = 'open' | 'closed' | 'merged';

export interface RestTokenOptions {
  /** What the token may do with actions caches; default 'write'. */
  permission?: RestPermission;
}

export interface RestFault {
  /** Status to answer: 429, 403 (with rate-limit headers), 500, 502, 503, ... */
  status: number;
  /** Answer nothing at all: the connection stays open until the client gives up. */
  silent?: boolean;
  /** How many requests to fail; default Infinity. */
  count?: number;
  /** Only requests with this method (default every method). */
  method?: 'GET' | 'DELETE';
  /** Send `retry-after: <n>`. */
  retryAfterSeconds?: number;
  /** Send `x-ratelimit-remaining: 0` and `x-ratelimit-reset: now + n` (seconds). */
  rateLimitResetSeconds?: number;
}

/** REST-only state of the service: tokens, pull requests, faults. */
export class RestState {
  private readonly tokens = new Map<string, RestPermission>();
  private pulls = new Map<number, PullRequestState>();
  private faults: RestFault[] = [];

  mintToken(opts: RestTokenOptions = {}): string {
    const t = `ghs_${randomBytes(18).toString('base64url')}`;
    this.tokens.set(t, opts.permission ?? 'write');
    return t;
  }

  permissionOf(authorization: string | undefined): RestPermission | undefined {
    const m = /^(?:Bearer|token)\s+(\S+)$/i.exec(authorization ?? '');
    return m ? this.tokens.get(m[1] as string) : undefined;
  }

  setPullRequests(table: Readonly<Record<number, PullRequestState>>): void {
    this.pulls = new Map(Object.entries(table).map(([n, s]) => [Number(n), s]));
  }

  pull(n: number): PullRequestState | undefined {
    return this.pulls.get(n);
  }

  setFaults(faults: readonly RestFault[]): void {
    this.faults = faults.map((f) => ({ ...f }));
  }

  takeFault(method: string): RestFault | undefined {
    for (const f of this.faults) {
      if (f.method !== undefined && f.method !== method) continue;
      const left = f.count ?? Infinity;
      if (left <= 0) continue;
      f.count = left - 1;
      return f;
    }
    return undefined;
  }

  reset(): void {
    this.pulls.clear();
    this.faults = [];
  }
}

/** One cache in GitHub's REST shape. */
export interface RestCache {
  id: number;
  ref: string;
  key: string;
  version: string;
  last_accessed_at: string;
  created_at: string;
  size_in_bytes: number;
}

function toRest(e: Entry): RestCache {
  return {
    id: e.id,
    ref: e.scope,
    key: e.key,
    version: e.version,
    last_accessed_at: e.lastAccessedAt.toISOString(),
    created_at: e.createdAt.toISOString(),
    size_in_bytes: e.sizeBytes,
  };
}

/**
 * Drops an entry and its blob. EntryStore has no removal of its own yet (the Twirp side never
 * deletes), so this reaches its id map through TypeScript's element-access escape hatch.
 */
function removeEntry(store: EntryStore, e: Entry): void {
  store['byId'].delete(e.id);
  fs.rmSync(e.file, { force: true });
}

const RATE_LIMIT = 5000;

class RestReply {
  private remaining = RATE_LIMIT - 1;
  constructor(
    private readonly res: ServerResponse,
    private readonly base: Record<string, string> = {},
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(this.remaining),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-ratelimit-resource': 'core',
      ...this.base,
      ...extra,
    };
  }

  json(status: number, body: unknown, extra: Record<string, string> = {}): void {
    const data = Buffer.from(JSON.stringify(body), 'utf8');
    this.res.writeHead(status, {
      ...this.headers(extra),
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(data.length),
    });
    this.res.end(data);
  }

  empty(status: number): void {
    this.res.writeHead(status, this.headers());
    this.res.end();
  }

  error(status: number, message: string, extra: Record<string, string> = {}): void {
    this.json(
      status,
      { message, documentation_url: 'https://docs.github.com/rest', status: String(status) },
      extra,
    );
  }

  exhausted(): void {
    this.remaining = 0;
  }
}

const SORTS = ['created_at', 'last_accessed_at', 'size_in_bytes'] as const;
type Sort = (typeof SORTS)[number];

function sortValue(c: RestCache, sort: Sort): number {
  return sort === 'size_in_bytes' ? c.size_in_bytes : Date.parse(c[sort]);
}

export async function handleRest(
  ctx: ServiceContext,
  rest: RestState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  await drain(req);
  const reply = new RestReply(res);
  const method = req.method ?? '';

  const fault = rest.takeFault(method);
  if (fault?.silent === true) return;
  if (fault) {
    const extra: Record<string, string> = {};
    if (fault.retryAfterSeconds !== undefined)
      extra['retry-after'] = String(fault.retryAfterSeconds);
    if (fault.rateLimitResetSeconds !== undefined) {
      reply.exhausted();
      extra['x-ratelimit-reset'] = String(
        Math.floor(Date.now() / 1000) + fault.rateLimitResetSeconds,
      );
    }
    const message =
      fault.status === 429 || fault.rateLimitResetSeconds !== undefined
        ? 'API rate limit exceeded (injected fault)'
        : `injected fault: ${fault.status}`;
    reply.error(fault.status, message, extra);
    return;
  }

  const permission = rest.permissionOf(req.headers.authorization);
  if (permission === undefined) return reply.error(401, 'Bad credentials');

  const p = url.pathname.slice(API_PREFIX.length);
  let m: RegExpExecArray | null;
  if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/.exec(p)) && method === 'GET') {
    const n = Number(m[3]);
    const state = rest.pull(n);
    if (state === undefined) return reply.error(404, 'Not Found');
    return reply.json(200, {
      number: n,
      state: state === 'open' ? 'open' : 'closed',
      merged: state === 'merged',
      merged_at: state === 'merged' ? new Date(0).toISOString() : null,
    });
  }

  const cachePath = /^\/repos\/([^/]+)\/([^/]+)\/actions\/(caches(?:\/(\d+))?|cache\/usage)$/.exec(
    p,
  );
  if (!cachePath) return reply.error(404, 'Not Found');
  if (permission === 'none') return reply.error(404, 'Not Found');
  const [, owner, repo, what, idRaw] = cachePath;
  const finalized = (): Entry[] => ctx.store.all().filter((e) => e.finalized);

  if (what === 'cache/usage' && method === 'GET') {
    const all = finalized();
    return reply.json(200, {
      full_name: `${owner}/${repo}`,
      active_caches_size_in_bytes: all.reduce((a, e) => a + e.sizeBytes, 0),
      active_caches_count: all.length,
    });
  }

  if (idRaw !== undefined) {
    if (method !== 'DELETE') return reply.error(404, 'Not Found');
    if (permission !== 'write') return reply.error(403, 'Resource not accessible by integration');
    const e = finalized().find((x) => x.id === Number(idRaw));
    if (!e) return reply.error(404, 'Not Found');
    removeEntry(ctx.store, e);
    return reply.empty(204);
  }

  const q = url.searchParams;
  if (method === 'DELETE') {
    if (permission !== 'write') return reply.error(403, 'Resource not accessible by integration');
    const key = q.get('key');
    if (!key) return reply.error(422, 'Invalid request: key is required');
    const ref = q.get('ref');
    const victims = finalized().filter((e) => e.key === key && (ref === null || e.scope === ref));
    if (victims.length === 0) return reply.error(404, 'Not Found');
    for (const e of victims) removeEntry(ctx.store, e);
    return reply.json(200, { total_count: victims.length, actions_caches: victims.map(toRest) });
  }
  if (method !== 'GET') return reply.error(404, 'Not Found');

  const sortRaw = q.get('sort') ?? 'last_accessed_at';
  const sort = SORTS.find((s) => s === sortRaw);
  const direction = q.get('direction') ?? 'desc';
  if (sort === undefined || (direction !== 'asc' && direction !== 'desc')) {
    return reply.error(422, 'Validation Failed: sort or direction is invalid');
  }
  const perPage = Math.min(100, Math.max(1, Number(q.get('per_page') ?? '30') || 30));
  const page = Math.max(1, Math.floor(Number(q.get('page') ?? '1') || 1));
  const keyPrefix = q.get('key');
  const ref = q.get('ref');
  const sign = direction === 'asc' ? 1 : -1;
  const matching = finalized()
    .filter(
      (e) =>
        (keyPrefix === null || e.key.startsWith(keyPrefix)) && (ref === null || e.scope === ref),
    )
    .map(toRest)
    .sort((a, b) => sign * (sortValue(a, sort) - sortValue(b, sort) || a.id - b.id));
  const lastPage = Math.max(1, Math.ceil(matching.length / perPage));
  const pageUrl = (n: number): string => {
    const u = new URL(url.href);
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(n));
    return u.href;
  };
  const links: string[] = [];
  if (page < lastPage)
    links.push(`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(lastPage)}>; rel="last"`);
  if (page > 1)
    links.push(
      `<${pageUrl(1)}>; rel="first"`,
      `<${pageUrl(Math.min(page - 1, lastPage))}>; rel="prev"`,
    );
  return reply.json(
    200,
    {
      total_count: matching.length,
      actions_caches: matching.slice((page - 1) * perPage, page * perPage),
    },
    links.length > 0 ? { link: links.join(', ') } : {},
  );
}
