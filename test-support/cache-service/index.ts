/**
 * Loopback emulation of GitHub's runner cache service (v2), for tests and demos; never imported
 * by `src/`. Speaks what `@actions/cache` 6.3.0 speaks (see docs in
 * /work/shared/runner-cache-protocol.md): the three Twirp calls at the root of its URL, and
 * Azure-shaped blob PUT/GET on signed URLs under `/devstoreaccount1/actions-cache/<id>`. Branch
 * scopes come from the runtime token's `ac` claim; faults can be switched on per call.
 *
 *   const service = await startCacheService();
 *   Object.assign(process.env, service.env());   // then use @actions/cache as on a runner
 *   ...
 *   await service.close();
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';

import { errorMessage } from '../../src/errors.js';
import { handleBlob } from './blob.js';
import { FaultState, type Faults } from './faults.js';
import type { ServiceContext } from './http.js';
import {
  API_PREFIX,
  handleRest,
  RestState,
  type PullRequestState,
  type RestFault,
  type RestTokenOptions,
} from './rest.js';
import { EntryStore, type StoredEntry } from './store.js';
import { DEFAULT_SCOPES, mintToken, type Scope } from './token.js';
import { handleTwirp, twirpCode } from './twirp.js';

export type { DownloadFault, FaultSpec, Faults, SilentFault, TwirpMethod } from './faults.js';
export type { StoredEntry } from './store.js';
export type { PullRequestState, RestCache, RestFault, RestTokenOptions } from './rest.js';
export type { Scope } from './token.js';

export interface RequestRecord {
  method: string;
  /** Path plus query, without the URL's signature parameters (`sv`, `sp`, `sig`). */
  path: string;
  /** Status sent; 0 while the request is still being answered or if none was sent. */
  status: number;
}

export interface CacheService {
  /** Base URL, e.g. `http://127.0.0.1:PORT/`; the service answers at the root. */
  readonly url: string;
  /** JWT-shaped runtime token whose `ac` claim holds the scopes (default: main, read+write). */
  token(scopes?: Scope[]): string;
  /** ACTIONS_CACHE_SERVICE_V2, ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN. */
  env(scopes?: Scope[]): Record<string, string>;
  /** Base URL of the GitHub REST emulation (GITHUB_API_URL), e.g. `http://127.0.0.1:PORT/api`. */
  readonly apiUrl: string;
  /** A REST token (default permission 'write'; 'read' gets 403 on deletes, 'none' 404). */
  restToken(opts?: RestTokenOptions): string;
  /** Pull request states for `GET /repos/{o}/{r}/pulls/{n}`; merged is closed with merged: true. */
  setPullRequests(table: Readonly<Record<number, PullRequestState>>): void;
  /** Replace the REST faults; `setRestFaults([])` clears them. */
  setRestFaults(faults: readonly RestFault[]): void;
  /** Replace the current faults; `setFaults({})` clears them. */
  setFaults(f: Faults): void;
  /**
   * Hand out download URLs on another origin (undefined: the service's own URL), e.g.
   * `http://bench.blob.core.windows.net`, for which `@actions/cache` takes its Azure SDK path
   * (HEAD, then parallel ranged GETs). The host does not resolve: a client reaches it with
   * `proxyEnv()`, since the service also answers proxy requests (absolute-form request lines).
   */
  setDownloadOrigin(origin: string | undefined): void;
  /**
   * HTTP_PROXY / HTTPS_PROXY naming the service, NO_PROXY for loopback, and NODE_USE_ENV_PROXY=1
   * so that Node's `fetch` honours them too: with setDownloadOrigin, downloads reach the service.
   */
  proxyEnv(): Record<string, string>;
  /** Snapshot of every entry, reserved or finalized, in creation order. */
  entries(): StoredEntry[];
  /** Store a finalized entry with these raw archive bytes (default scope refs/heads/main). */
  seedEntry(e: {
    key: string;
    version: string;
    scope?: string;
    data: Buffer;
    createdAt?: Date;
    /** Default: createdAt. */
    lastAccessedAt?: Date;
  }): StoredEntry;
  /** The stored blob of an entry. */
  readEntry(id: number): Buffer;
  /** Every request received since start or reset(), in arrival order. */
  requests(): RequestRecord[];
  /** Drop entries, faults (Twirp, blob, REST), pull request states and the request log. */
  reset(): void;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where blobs are kept; default a fresh temp dir, removed by close(). */
  dataDir?: string;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
}

const SIGNATURE_PARAMS = ['sv', 'sp', 'sig'];

function logPath(url: URL): string {
  const q = new URLSearchParams(url.search);
  for (const p of SIGNATURE_PARAMS) q.delete(p);
  const s = q.toString();
  return s ? `${url.pathname}?${s}` : url.pathname;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function snapshot(e: StoredEntry): StoredEntry {
  return {
    id: e.id,
    key: e.key,
    version: e.version,
    scope: e.scope,
    sizeBytes: e.sizeBytes,
    createdAt: new Date(e.createdAt),
    lastAccessedAt: new Date(e.lastAccessedAt),
    finalized: e.finalized,
    file: e.file,
  };
}

export async function startCacheService(opts: StartOptions = {}): Promise<CacheService> {
  const host = opts.host ?? '127.0.0.1';
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'clyde-cache-service-'));
  const store = new EntryStore(dataDir);
  const faults = new FaultState();
  const rest = new RestState();
  const secret = randomBytes(32);
  let log: RequestRecord[] = [];
  // Listen first: the signed URLs need the port, and the handler needs the URLs.
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${urlHost(host)}:${port}/`;
  const ctx: ServiceContext = { secret, store, faults, url };

  // As a proxy (see setDownloadOrigin): Node's fetch, through undici's proxy agent, opens a
  // CONNECT tunnel even to an http:// origin; the tunnel is answered by this same server.
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    server.emit('connection', socket);
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const reqUrl = new URL(req.url ?? '/', url);
    const record: RequestRecord = { method: req.method ?? '', path: logPath(reqUrl), status: 0 };
    log.push(record);
    res.on('close', () => {
      if (res.headersSent) record.status = res.statusCode;
    });
    const work = reqUrl.pathname.startsWith('/twirp/')
      ? handleTwirp(ctx, req, res, reqUrl.pathname)
      : reqUrl.pathname.startsWith(`${API_PREFIX}/`)
        ? handleRest(ctx, rest, req, res, reqUrl)
        : handleBlob(ctx, req, res, reqUrl);
    work.catch((err: unknown) => {
      if (!res.headersSent) {
        const msg = `loopback cache service: ${errorMessage(err)}`;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: twirpCode(500), msg }));
      } else {
        res.destroy();
      }
    });
  });

  const token = (scopes: Scope[] = [...DEFAULT_SCOPES]): string => mintToken(secret, scopes);

  return {
    url,
    token,
    env: (scopes) => ({
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: url,
      ACTIONS_RUNTIME_TOKEN: token(scopes),
    }),
    apiUrl: new URL(API_PREFIX, url).href,
    restToken: (opts) => rest.mintToken(opts),
    setPullRequests: (table) => rest.setPullRequests(table),
    setRestFaults: (f) => rest.setFaults(f),
    setFaults: (f) => faults.set(f),
    setDownloadOrigin: (origin) => {
      ctx.downloadOrigin = origin === undefined ? undefined : new URL(origin).origin;
    },
    proxyEnv: () => {
      const proxy = url.replace(/\/$/, '');
      return {
        HTTP_PROXY: proxy,
        HTTPS_PROXY: proxy,
        NO_PROXY: '127.0.0.1,localhost,::1',
        NODE_USE_ENV_PROXY: '1',
      };
    },
    entries: () => store.all().map(snapshot),
    seedEntry: ({ key, version, scope = 'refs/heads/main', data, createdAt, lastAccessedAt }) => {
      if (store.find(key, version, scope)) {
        throw new Error(`seedEntry: ${key} (version ${version}) already exists in ${scope}`);
      }
      const entry = store.create(key, version, scope, createdAt ?? new Date());
      const tmp = store.tempFile('seed');
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, entry.file);
      entry.committed = true;
      entry.finalized = true;
      entry.sizeBytes = data.length;
      if (lastAccessedAt) entry.lastAccessedAt = lastAccessedAt;
      return snapshot(entry);
    },
    readEntry: (id) => {
      const entry = store.get(id);
      if (!entry?.committed) throw new Error(`readEntry: entry ${id} has no stored blob`);
      return fs.readFileSync(entry.file);
    },
    requests: () => log.map((r) => ({ ...r })),
    reset: () => {
      store.clear();
      faults.set({});
      rest.reset();
      log = [];
    },
    close: async () => {
      const closed = new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
      server.closeAllConnections();
      await closed;
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
