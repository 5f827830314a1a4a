/**
 * The Twirp half of the loopback cache service: CreateCacheEntry, FinalizeCacheEntryUpload and
 * GetCacheEntryDownloadURL, JSON only, snake_case fields, default values omitted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { TwirpMethod } from './faults.js';
import { BodyTooLarge, readBody, sendJson, sendText, type ServiceContext } from './http.js';
import { findMatch, firstWritableScope, hasReadableScope } from './store.js';
import { signUrl, verifyToken, type Scope } from './token.js';

export const TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.CacheService/';

/** Blob container used in signed URLs: `/devstoreaccount1/<container>/<id>`. */
export const ACCOUNT = 'devstoreaccount1';
export const CONTAINER = 'actions-cache';

const METHODS: readonly TwirpMethod[] = [
  'CreateCacheEntry',
  'FinalizeCacheEntryUpload',
  'GetCacheEntryDownloadURL',
];

const CODES: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'already_exists',
  412: 'failed_precondition',
  429: 'resource_exhausted',
  500: 'internal',
  501: 'unimplemented',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

/** Twirp's error code for an HTTP status (`unknown` when Twirp has none). */
export function twirpCode(status: number): string {
  return CODES[status] ?? 'unknown';
}

function twirpError(res: ServerResponse, status: number, msg: string, code = twirpCode(status)) {
  sendJson(res, status, { code, msg });
}

class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

export function blobPath(id: number): string {
  return `/${ACCOUNT}/${CONTAINER}/${id}`;
}

export async function handleTwirp(
  ctx: ServiceContext,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
): Promise<void> {
  const method = pathname.slice(TWIRP_PREFIX.length) as TwirpMethod;
  if (req.method !== 'POST' || !METHODS.includes(method)) {
    twirpError(res, 404, `no handler for ${req.method ?? '?'} ${pathname}`, 'bad_route');
    return;
  }
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
  if (contentType !== 'application/json') {
    twirpError(res, 404, `unexpected Content-Type: ${contentType ?? ''}`, 'bad_route');
    return;
  }
  let raw: Buffer;
  try {
    raw = await readBody(req, 1024 * 1024);
  } catch (err) {
    if (err instanceof BodyTooLarge) return twirpError(res, 400, err.message, 'malformed');
    throw err;
  }

  const fault = ctx.faults.takeTwirp(method);
  if (fault) {
    if (fault.body !== undefined) sendText(res, fault.status, fault.body, 'application/json');
    else twirpError(res, fault.status, `injected fault: ${fault.status}`);
    return;
  }

  const auth = req.headers.authorization ?? '';
  const scopes = auth.startsWith('Bearer ') ? verifyToken(ctx.secret, auth.slice(7)) : undefined;
  if (!scopes) {
    twirpError(res, 401, 'missing or invalid runtime token');
    return;
  }

  let body: Record<string, unknown>;
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('not an object');
    }
    body = parsed as Record<string, unknown>;
  } catch {
    twirpError(res, 400, 'request body is not a JSON object', 'malformed');
    return;
  }

  try {
    switch (method) {
      case 'CreateCacheEntry':
        return create(ctx, res, scopes, body);
      case 'FinalizeCacheEntryUpload':
        return finalize(ctx, res, scopes, body);
      case 'GetCacheEntryDownloadURL':
        return lookup(ctx, res, scopes, body);
    }
  } catch (err) {
    if (err instanceof BadRequest) return twirpError(res, 400, err.message);
    throw err;
  }
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '') throw new BadRequest(`${field} is required`);
  return v;
}

function create(
  ctx: ServiceContext,
  res: ServerResponse,
  scopes: Scope[],
  body: Record<string, unknown>,
): void {
  const key = requiredString(body, 'key');
  const version = requiredString(body, 'version');
  const scope = firstWritableScope(scopes);
  if (scope === undefined) {
    sendJson(res, 200, { message: 'cache write denied: the token has no writable cache scope' });
    return;
  }
  if (ctx.store.find(key, version, scope)) {
    twirpError(res, 409, `cache entry ${key} (version ${version}) already exists in ${scope}`);
    return;
  }
  const entry = ctx.store.create(key, version, scope);
  sendJson(res, 200, {
    ok: true,
    signed_upload_url: signUrl(ctx.secret, ctx.url, blobPath(entry.id), 'w'),
  });
}

function finalize(
  ctx: ServiceContext,
  res: ServerResponse,
  scopes: Scope[],
  body: Record<string, unknown>,
): void {
  const key = requiredString(body, 'key');
  const version = requiredString(body, 'version');
  const sizeRaw = body['size_bytes'] ?? '0';
  const size = typeof sizeRaw === 'string' || typeof sizeRaw === 'number' ? Number(sizeRaw) : NaN;
  if (!Number.isSafeInteger(size) || size < 0) throw new BadRequest('size_bytes is invalid');
  const scope = firstWritableScope(scopes);
  if (scope === undefined) {
    sendJson(res, 200, { message: 'cache write denied: the token has no writable cache scope' });
    return;
  }
  const entry = ctx.store.find(key, version, scope);
  if (!entry) {
    twirpError(res, 404, `no cache entry ${key} (version ${version}) reserved in ${scope}`);
    return;
  }
  if (entry.finalized) {
    twirpError(res, 409, `cache entry ${key} (version ${version}) is already finalized`);
    return;
  }
  if (!entry.committed) {
    sendJson(res, 200, { message: `no blob was uploaded for cache entry ${key}` });
    return;
  }
  if (entry.sizeBytes !== size) {
    sendJson(res, 200, {
      message: `size mismatch for cache entry ${key}: uploaded ${entry.sizeBytes}, declared ${size}`,
    });
    return;
  }
  entry.finalized = true;
  sendJson(res, 200, { ok: true, entry_id: String(entry.id) });
}

function lookup(
  ctx: ServiceContext,
  res: ServerResponse,
  scopes: Scope[],
  body: Record<string, unknown>,
): void {
  const key = requiredString(body, 'key');
  const version = requiredString(body, 'version');
  const rk = body['restore_keys'] ?? [];
  if (!Array.isArray(rk) || !rk.every((k): k is string => typeof k === 'string')) {
    throw new BadRequest('restore_keys must be a list of strings');
  }
  if (!hasReadableScope(scopes)) {
    twirpError(res, 403, 'cache read denied: the token has no readable cache scope');
    return;
  }
  const hit = findMatch(ctx.store.all(), scopes, { key, restoreKeys: rk, version });
  if (!hit) {
    sendJson(res, 200, {});
    return;
  }
  hit.lastAccessedAt = new Date();
  sendJson(res, 200, {
    ok: true,
    signed_download_url: signUrl(ctx.secret, ctx.downloadOrigin ?? ctx.url, blobPath(hit.id), 'r'),
    matched_key: hit.key,
  });
}
