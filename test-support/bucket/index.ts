/**
 * A real S3-compatible server on loopback for the bucket tier's tests: s3rver (an npm package
 * that speaks the S3 REST API, SigV4 requests and multipart uploads, storing objects in a
 * directory), behind a small fault proxy that can answer 5xx or throttle (503 SlowDown), drop a
 * connection in the middle of a request body, or refuse connections. The proxy also counts the
 * object bytes uploaded, so tests can assert what a save sent.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import S3rver from 's3rver';

export const TEST_BUCKET = 'clyde-fleet';

/** One kind of fault, for requests whose "METHOD path?query" matches `match`. */
export interface BucketFault {
  readonly match?: RegExp;
  /** How many matching requests it hits; default every one. */
  count?: number;
  /** Answer with this status and S3 error code (e.g. 500 InternalError, 503 SlowDown). */
  readonly status?: number;
  readonly code?: string;
  /** Read this many bytes of the request body, then destroy the connection. */
  readonly dropAfterBytes?: number;
  /** Hold the request (unanswered, not forwarded) until `release()`. */
  readonly hold?: boolean;
}

export interface BucketServer {
  /** The endpoint URL (the proxy's) for the `bucket-endpoint` input. */
  readonly endpoint: string;
  readonly dir: string;
  /** The inputs that point the action at the server's bucket under `prefix`. */
  inputs(prefix?: string): Record<string, string>;
  /** Environment for a step: credentials the server accepts, no instance-metadata lookups. */
  env(): Record<string, string>;
  setFaults(faults: BucketFault[]): void;
  /** Resolves once a request is being held by a `hold` fault. */
  held(): Promise<void>;
  /** Forwards every held request, and holds no more. */
  release(): void;
  /** Makes every object look `ms` older (its Last-Modified moves back). */
  age(ms: number): Promise<void>;
  /** "METHOD path?query" of every request since the last reset. */
  requests(): readonly string[];
  /** Body bytes of PUT requests (objects and parts) seen since the last reset. */
  uploadedBytes(): number;
  /** Every object of the bucket under `prefix`: key -> size. */
  objects(prefix?: string): Promise<Map<string, number>>;
  reset(): void;
  close(): Promise<void>;
}

export async function startBucketServer(): Promise<BucketServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-s3-'));
  const s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: path.join(dir, 'data'),
    configureBuckets: [{ name: TEST_BUCKET }],
  });
  const { port: s3Port } = await s3.run();
  let faults: BucketFault[] = [];
  let uploaded = 0;
  const sockets = new Set<Socket>();
  let seen: string[] = [];
  let holding: (() => void)[] = [];
  let onHeld: (() => void)[] = [];

  const proxy = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    seen.push(line);
    const fault = faults.find((f) => (f.match ? f.match.test(line) : true) && (f.count ?? 1) > 0);
    if (fault?.hold) {
      if (fault.count !== undefined) fault.count--;
      req.pause();
      holding.push(() => forward(req, res));
      for (const f of onHeld) f();
      onHeld = [];
      return;
    }
    if (fault) {
      if (fault.count !== undefined) fault.count--;
      if (fault.dropAfterBytes !== undefined) {
        let seen = 0;
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen >= (fault.dropAfterBytes ?? 0)) req.socket.destroy();
        });
        req.on('end', () => req.socket.destroy());
        return;
      }
      req.resume();
      req.on('end', () => {
        const code = fault.code ?? 'InternalError';
        res.writeHead(fault.status ?? 500, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected fault</Message></Error>`,
        );
      });
      return;
    }
    forward(req, res);
  });
  const forward = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const upstream = http.request(
      { host: '127.0.0.1', port: s3Port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    if (req.method === 'PUT') req.on('data', (c: Buffer) => (uploaded += c.length));
    req.pipe(upstream);
  };
  proxy.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const walk = async (p: string, out: string[]): Promise<void> => {
    for (const d of await fs.readdir(p, { withFileTypes: true }).catch(() => [])) {
      const q = path.join(p, d.name);
      if (d.isDirectory()) await walk(q, out);
      else out.push(q);
    }
  };

  return {
    endpoint,
    dir,
    inputs: (prefix = 'ci') => ({
      bucket: `s3://${TEST_BUCKET}/${prefix}`,
      'bucket-endpoint': endpoint,
      'bucket-path-style': 'true',
      'bucket-region': 'us-east-1',
    }),
    env: () => ({
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_EC2_METADATA_DISABLED: 'true',
      // Nothing of the machine's own AWS configuration (profiles, SSO) takes part.
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
      AWS_CONFIG_FILE: path.join(dir, 'no-config'),
    }),
    setFaults(f) {
      faults = f;
    },
    held: () =>
      holding.length > 0 ? Promise.resolve() : new Promise((resolve) => onHeld.push(resolve)),
    release() {
      faults = faults.filter((f) => !f.hold);
      const h = holding;
      holding = [];
      for (const f of h) f();
    },
    async age(ms) {
      const files: string[] = [];
      await walk(path.join(dir, 'data', TEST_BUCKET), files);
      for (const f of files) {
        if (!f.endsWith('._S3rver_object')) continue;
        const st = await fs.stat(f);
        const t = new Date(st.mtimeMs - ms);
        await fs.utimes(f, t, t);
      }
    },
    requests: () => seen,
    uploadedBytes: () => uploaded,
    async objects(prefix = '') {
      // s3rver keeps each object as <bucket>/<key>._S3rver_object (and metadata beside it).
      const root = path.join(dir, 'data', TEST_BUCKET);
      const files: string[] = [];
      await walk(root, files);
      const out = new Map<string, number>();
      for (const f of files) {
        if (!f.endsWith('._S3rver_object')) continue;
        const key = path
          .relative(root, f)
          .slice(0, -'._S3rver_object'.length)
          .split(path.sep)
          .join('/');
        if (key.startsWith(prefix)) out.set(key, (await fs.stat(f)).size);
      }
      return out;
    },
    reset() {
      faults = [];
      uploaded = 0;
      seen = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s3.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
