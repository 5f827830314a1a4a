/** Small `node:http` helpers shared by the Twirp and blob handlers of the loopback service. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';

import type { FaultState } from './faults.js';
import type { EntryStore } from './store.js';

/** What a request handler may touch. */
export interface ServiceContext {
  readonly secret: Buffer;
  readonly store: EntryStore;
  readonly faults: FaultState;
  /** Base URL, e.g. `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /**
   * Origin of signed download URLs when not `url` (see CacheService.setDownloadOrigin), e.g.
   * `http://bench.blob.core.windows.net`; such requests reach the service as its proxy.
   */
  downloadOrigin?: string;
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/** The whole request body, refusing more than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge(`request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Read and discard the request body (so a keep-alive connection stays usable). */
export async function drain(req: IncomingMessage): Promise<void> {
  req.resume();
  await finished(req);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body), 'application/json');
}

export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  const data = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    ...headers,
    'content-type': contentType,
    'content-length': String(data.length),
  });
  res.end(data);
}

/** A timer that never keeps the process alive on its own. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
