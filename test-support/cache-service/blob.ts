/**
 * The blob half of the loopback cache service, shaped like Azure Blob Storage as the Azure SDK and
 * `@actions/cache` use it: `PUT` (single shot), `PUT ?comp=block`, `PUT ?comp=blocklist`, `GET`
 * (whole blob, or a `Range`/`x-ms-range` with 206) and `HEAD`. URLs look like
 * `/devstoreaccount1/actions-cache/<id>?sv=..&sp=r|w&sig=..`; blob bytes live on disk.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { drain, readBody, sendText, sleep, type ServiceContext } from './http.js';
import { EntryStore, type Entry } from './store.js';
import { checkSignedUrl } from './token.js';
import { ACCOUNT, CONTAINER } from './twirp.js';

const API_VERSION = '2024-11-04';

/** The entry id named by a blob path, or undefined when the path is not one of ours. */
export function parseBlobPath(pathname: string): number | undefined {
  const m = /^\/([^/]+)\/([^/]+)\/(\d+)$/.exec(pathname);
  if (!m || m[1] !== ACCOUNT || m[2] !== CONTAINER) return undefined;
  return Number(m[3]);
}

function commonHeaders(req: IncomingMessage): Record<string, string> {
  const h: Record<string, string> = {
    'x-ms-request-id': randomUUID(),
    'x-ms-version': headerValue(req, 'x-ms-version') ?? API_VERSION,
  };
  const clientId = headerValue(req, 'x-ms-client-request-id');
  if (clientId !== undefined) h['x-ms-client-request-id'] = clientId;
  return h;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function storageError(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  const xml =
    `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code>` +
    `<Message>${message}\nRequestId:${randomUUID()}\nTime:${new Date().toISOString()}</Message></Error>`;
  sendText(res, status, xml, 'application/xml', { ...commonHeaders(req), 'x-ms-error-code': code });
}

export async function handleBlob(
  ctx: ServiceContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const id = parseBlobPath(url.pathname);
  const entry = id === undefined ? undefined : ctx.store.get(id);
  const method = req.method ?? '';
  if (method === 'PUT') return put(ctx, req, res, url, entry);
  if (method === 'GET' || method === 'HEAD') return get(ctx, req, res, url, entry);
  await drain(req);
  storageError(req, res, 405, 'UnsupportedHttpVerb', `${method} is not supported`);
}

async function put(
  ctx: ServiceContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  entry: Entry | undefined,
): Promise<void> {
  if (!checkSignedUrl(ctx.secret, url, 'w')) {
    await drain(req);
    return storageError(req, res, 403, 'AuthenticationFailed', 'signature or permission invalid');
  }
  if (!entry) {
    await drain(req);
    return storageError(req, res, 404, 'BlobNotFound', 'no such cache entry');
  }
  if (entry.finalized) {
    await drain(req);
    return storageError(req, res, 409, 'BlobImmutable', 'the cache entry is finalized');
  }
  if (ctx.faults.takeSilentUpload()) {
    // Read the body, then never answer: the connection stays open until the client gives up
    // (or the service closes).
    await drain(req);
    return;
  }
  const fault = ctx.faults.takeBlobPut();
  if (fault) {
    await drain(req);
    if (fault.body !== undefined) {
      return sendText(res, fault.status, fault.body, 'application/xml', commonHeaders(req));
    }
    return storageError(req, res, fault.status, 'InjectedFault', `injected fault ${fault.status}`);
  }

  const comp = url.searchParams.get('comp');
  const now = new Date();
  const headers = {
    ...commonHeaders(req),
    etag: EntryStore.etag(),
    'last-modified': now.toUTCString(),
    'x-ms-request-server-encrypted': 'true',
  };

  if (comp === null) {
    if (headerValue(req, 'x-ms-blob-type') !== 'BlockBlob') {
      await drain(req);
      return storageError(req, res, 400, 'InvalidHeaderValue', 'x-ms-blob-type must be BlockBlob');
    }
    const { md5, size } = await receiveTo(ctx, req, entry.file);
    entry.committed = true;
    entry.sizeBytes = size;
    removeBlocks(ctx, entry.id);
    return created(res, { ...headers, 'content-md5': md5 });
  }

  if (comp === 'block') {
    const blockId = url.searchParams.get('blockid');
    if (!blockId) {
      await drain(req);
      return storageError(req, res, 400, 'InvalidQueryParameterValue', 'blockid is required');
    }
    const { md5 } = await receiveTo(ctx, req, ctx.store.blockFile(entry.id, blockId));
    return created(res, { ...headers, 'content-md5': md5 });
  }

  if (comp === 'blocklist') {
    const xml = (await readBody(req, 16 * 1024 * 1024)).toString('utf8');
    const ids = parseBlockList(xml);
    const files = ids.map((b) => ctx.store.blockFile(entry.id, b));
    const missing = ids.filter((_b, i) => !fs.existsSync(files[i] as string));
    if (missing.length > 0) {
      return storageError(req, res, 400, 'InvalidBlockList', `unknown block ${missing[0]}`);
    }
    const size = await concatTo(ctx, files, entry.file);
    entry.committed = true;
    entry.sizeBytes = size;
    removeBlocks(ctx, entry.id);
    return created(res, headers);
  }

  await drain(req);
  storageError(req, res, 400, 'UnsupportedQueryParameter', `comp=${comp} is not supported`);
}

function created(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(201, { ...headers, 'content-length': '0' });
  res.end();
}

/** Block ids of a `<BlockList>` in document order (`Latest`, `Committed` or `Uncommitted`). */
export function parseBlockList(xml: string): string[] {
  const ids: string[] = [];
  for (const m of xml.matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)) {
    ids.push(m[2] as string);
  }
  return ids;
}

/** Stream the request body to `dest` through a temp file; returns its base64 MD5 and size. */
async function receiveTo(
  ctx: ServiceContext,
  req: IncomingMessage,
  dest: string,
): Promise<{ md5: string; size: number }> {
  const tmp = ctx.store.tempFile('upload');
  const hash = createHash('md5');
  let size = 0;
  try {
    await pipeline(
      req,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      fs.createWriteStream(tmp),
    );
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(tmp, dest);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return { md5: hash.digest('base64'), size };
}

async function concatTo(ctx: ServiceContext, files: string[], dest: string): Promise<number> {
  const tmp = ctx.store.tempFile('commit');
  let size = 0;
  try {
    await pipeline(async function* () {
      for (const f of files) {
        for await (const chunk of fs.createReadStream(f) as AsyncIterable<Buffer>) {
          size += chunk.length;
          yield chunk;
        }
      }
    }, fs.createWriteStream(tmp));
    fs.renameSync(tmp, dest);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return size;
}

function removeBlocks(ctx: ServiceContext, id: number): void {
  fs.rmSync(path.dirname(ctx.store.blockFile(id, 'x')), { recursive: true, force: true });
}

/** Resolves when `w` can take more data or has gone away. */
function writable(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

interface ByteRange {
  start: number;
  end: number; // inclusive
}

/**
 * The range asked for by `x-ms-range` (preferred) or `Range`: undefined for the whole blob, null
 * when unsatisfiable. Only single `bytes=a-b`, `bytes=a-` and `bytes=-n` ranges are understood.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined | null {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return null;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return null;
  return { start, end };
}

async function get(
  ctx: ServiceContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  entry: Entry | undefined,
): Promise<void> {
  await drain(req);
  if (!checkSignedUrl(ctx.secret, url, 'r')) {
    return storageError(req, res, 403, 'AuthenticationFailed', 'signature or permission invalid');
  }
  if (!entry || !entry.finalized || !entry.committed || !fs.existsSync(entry.file)) {
    return storageError(req, res, 404, 'BlobNotFound', 'the specified blob does not exist');
  }
  const stat = fs.statSync(entry.file);
  const size = stat.size;
  const headers: Record<string, string> = {
    ...commonHeaders(req),
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: `"0x${stat.mtimeMs.toString(16).replace('.', '').toUpperCase()}"`,
    'last-modified': stat.mtime.toUTCString(),
    'x-ms-creation-time': entry.createdAt.toUTCString(),
    'x-ms-blob-type': 'BlockBlob',
    'x-ms-lease-state': 'available',
    'x-ms-lease-status': 'unlocked',
    'x-ms-server-encrypted': 'true',
  };
  const range = parseRange(headerValue(req, 'x-ms-range') ?? headerValue(req, 'range'), size);
  if (range === null) {
    return sendText(res, 416, '', 'application/xml', {
      ...headers,
      'content-range': `bytes */${size}`,
      'x-ms-error-code': 'InvalidRange',
    });
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const status = range ? 206 : 200;
  headers['content-length'] = String(end - start + 1);
  if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;

  if (req.method === 'HEAD') {
    res.writeHead(200, { ...headers, 'content-length': String(size) });
    res.end();
    return;
  }

  const fault = ctx.faults.takeDownload();
  if (fault?.delayMs) await sleep(fault.delayMs);
  if (fault?.status !== undefined) {
    return storageError(req, res, fault.status, 'InjectedFault', `injected fault ${fault.status}`);
  }
  res.writeHead(status, headers);
  if (fault?.stallMs) {
    res.flushHeaders();
    await sleep(fault.stallMs);
    if (res.destroyed) return;
  }
  if (fault?.trickle) {
    // A few bytes at a time for as long as the body lasts (or until the client hangs up).
    const { bytes, everyMs } = fault.trickle;
    res.flushHeaders();
    const stream = fs.createReadStream(entry.file, { start, end, highWaterMark: bytes });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (res.destroyed) break;
      res.write(chunk);
      await sleep(everyMs);
    }
    stream.destroy();
    if (!res.destroyed) res.end();
    return;
  }
  if (fault?.truncateAt !== undefined) {
    const stop = Math.min(end, start + fault.truncateAt - 1);
    if (stop >= start) {
      for await (const chunk of fs.createReadStream(entry.file, { start, end: stop })) {
        if (res.destroyed) return;
        if (!res.write(chunk)) await writable(res);
      }
    } else {
      res.flushHeaders();
    }
    // The content-length promised more: close the connection without finishing the body.
    const socket = res.socket;
    if (socket) socket.destroySoon();
    else res.destroy();
    return;
  }
  if (end < start) {
    res.end();
    return;
  }
  await pipeline(fs.createReadStream(entry.file, { start, end }), res);
}
