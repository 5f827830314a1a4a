/**
 * The bucket tier (issue 15): one content-addressed store in an S3-compatible bucket, shared by
 * every runner of a fleet. Layout under the configured prefix:
 *
 *   blobs/<aa>/<digest>              a stored blob: exactly the zstd frame the local store holds
 *                                    (never recompressed), named by its content digest
 *   entries/<scope>/<key>            an entry (scope and key URI-encoded): the blob list, then the
 *                                    pack header (pack.ts: meta and the same table as the local
 *                                    store's artifact)
 *
 * An entry object is `BUCKET_MAGIC | u32 version | u32 n | n x (32-byte digest, u64 frame
 * length) | pack header`. A restore fetches it and the blobs it lists (in parallel, or copied
 * from the local store where it holds them) into their places of a pack file (`fetchPack`),
 * which is then restored like a runner-cache download (run/restore.ts): `LocalStore.restorePack`
 * checks the pack whole and verifies every file as the workers write it, the workspace
 * untouched on any failure, and `adoptPacks` makes it an entry of the local store. So a bucket
 * entry is as untrusted as a runner-cache one, and a bucket hit writes through to the store.
 *
 * Saves upload blobs first and the entry last, with no lock: a reader never sees an entry whose
 * blobs are not all there, and two runners saving one key both write whole, equal-content
 * objects. Only blobs the bucket lacks are uploaded: those the restored entry listed are taken
 * as present, the rest are asked for (HEAD); blobs the save relies on without uploading them get
 * a fresh Last-Modified when theirs is older than `REFRESH_AFTER_MS`, so gc's grace period
 * (bucket-gc.ts) never takes a blob a save in flight is about to reference.
 *
 * Scopes follow the runner cache: a job writes only its own ref's scope (GITHUB_REF) and reads
 * its own, then its pull request's base branch (GITHUB_BASE_REF).
 */
import * as core from '@actions/core';
import { createReadStream, promises as fs } from 'node:fs';
import { errorMessage, StoreError } from '../errors.js';
import type { LocalStore } from '../store/index.js';
import { MAX_HEADER_BYTES, PACK_MAGIC } from '../store/pack.js';
import { compareBytes, formatBytes } from '../util/bytes.js';
import { freeBytes, tempName } from '../util/fsx.js';
import { inParallel } from '../util/parallel.js';
import {
  bucketProblem,
  openBucketClient,
  type BucketClient,
  type BucketConfig,
  type BucketObject,
} from './bucket-client.js';
import { deadline, DeadlineError } from './deadline.js';
import type { Fetched } from './index.js';

export type { BucketConfig } from './bucket-client.js';

export const BUCKET_MAGIC = Buffer.from('CLYDEBK\n', 'latin1');
export const BUCKET_ENTRY_VERSION = 1;
const DIGEST_BYTES = 32;
const RECORD_BYTES = DIGEST_BYTES + 8;
/** The most an entry object may take: its pack header and a list of this many blobs. */
const MAX_ENTRY_BLOBS = 4 * 1024 * 1024;
/** Blobs above this go up in parts of MULTIPART_PART_BYTES (S3's minimum part is 5 MiB). */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const MULTIPART_PART_BYTES = 8 * 1024 * 1024;
/** Transfers in flight at once (blobs, or parts of one large blob). */
export const CONCURRENCY = 16;
/** Blobs above SMALL_BLOB_BYTES go up this many at a time (each up to 16 MiB in memory). */
const LARGE_CONCURRENCY = 4;
const SMALL_BLOB_BYTES = 1024 * 1024;
/** A restore declares at most this much: more is refused before anything is fetched. */
const MAX_RESTORE_BYTES = 10 * 1024 ** 3;
/**
 * Blobs a save relies on but does not upload are given a new Last-Modified when theirs is
 * older than this; gc's grace period must be longer (plus the longest save), see bucket-gc.ts.
 */
export const REFRESH_AFTER_MS = 6 * 60 * 60_000;

/** The object keys of the layout, built in one place. */
export class BucketLayout {
  constructor(readonly prefix: string) {}

  blob(digest: string): string {
    return `${this.prefix}blobs/${digest.slice(0, 2)}/${digest}`;
  }

  get blobsPrefix(): string {
    return `${this.prefix}blobs/`;
  }

  get entriesPrefix(): string {
    return `${this.prefix}entries/`;
  }

  scopePrefix(scope: string): string {
    return `${this.entriesPrefix}${encodeURIComponent(scope)}/`;
  }

  /** encodeURIComponent keeps prefixes: an encoded key prefix is a prefix of encoded keys. */
  entry(scope: string, key: string): string {
    return `${this.scopePrefix(scope)}${encodeURIComponent(key)}`;
  }

  /** Scope and key of an entry object, or undefined for anything else. */
  parseEntry(objectKey: string): { scope: string; key: string } | undefined {
    if (!objectKey.startsWith(this.entriesPrefix)) return undefined;
    const parts = objectKey.slice(this.entriesPrefix.length).split('/');
    if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
    try {
      return { scope: decodeURIComponent(parts[0]), key: decodeURIComponent(parts[1]) };
    } catch {
      return undefined;
    }
  }

  /** The digest of a blob object, or undefined. */
  parseBlob(objectKey: string): string | undefined {
    const m = /blobs\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(objectKey);
    return m && objectKey === this.blob(m[2] as string) ? m[2] : undefined;
  }
}

/** The scopes a job reads (own first, then its pull request's base) and the one it writes. */
export function scopesOf(env: NodeJS.ProcessEnv = process.env): {
  read: string[];
  write: string;
} {
  const own = env['GITHUB_REF']?.trim() || 'refs/heads/local';
  const base = env['GITHUB_BASE_REF']?.trim();
  const read = [own];
  if (base && `refs/heads/${base}` !== own) read.push(`refs/heads/${base}`);
  return { read, write: own };
}

/** A blob an entry lists: digest (hex) and stored frame length. */
export interface BlobRef {
  readonly digest: string;
  readonly bytes: number;
}

export interface ParsedEntry {
  readonly blobs: BlobRef[];
  /** The pack header: PACK_MAGIC through the table. */
  readonly header: Buffer;
}

export function encodeEntry(blobs: readonly BlobRef[], header: Buffer): Buffer {
  const head = Buffer.alloc(BUCKET_MAGIC.length + 8);
  BUCKET_MAGIC.copy(head, 0);
  head.writeUInt32BE(BUCKET_ENTRY_VERSION, BUCKET_MAGIC.length);
  head.writeUInt32BE(blobs.length, BUCKET_MAGIC.length + 4);
  const list = Buffer.alloc(blobs.length * RECORD_BYTES);
  blobs.forEach((b, i) => {
    Buffer.from(b.digest, 'hex').copy(list, i * RECORD_BYTES);
    list.writeBigUInt64BE(BigInt(b.bytes), i * RECORD_BYTES + DIGEST_BYTES);
  });
  return Buffer.concat([head, list, header]);
}

/** An entry object as it came from the bucket: checked for structure, nothing trusted yet. */
export function decodeEntry(buf: Buffer): ParsedEntry {
  const fixed = BUCKET_MAGIC.length + 8;
  if (buf.length < fixed || !buf.subarray(0, BUCKET_MAGIC.length).equals(BUCKET_MAGIC)) {
    throw new StoreError('not a clyde bucket entry (bad magic)');
  }
  const version = buf.readUInt32BE(BUCKET_MAGIC.length);
  if (version !== BUCKET_ENTRY_VERSION) {
    throw new StoreError(
      `unsupported bucket entry version ${version} (this clyde-cache reads ${BUCKET_ENTRY_VERSION})`,
    );
  }
  const n = buf.readUInt32BE(BUCKET_MAGIC.length + 4);
  if (n > MAX_ENTRY_BLOBS || fixed + n * RECORD_BYTES > buf.length) {
    throw new StoreError(`bucket entry lists ${n} blobs; its ${buf.length} bytes cannot hold them`);
  }
  const blobs: BlobRef[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const at = fixed + i * RECORD_BYTES;
    const digest = buf.subarray(at, at + DIGEST_BYTES).toString('hex');
    const bytes = buf.readBigUInt64BE(at + DIGEST_BYTES);
    if (bytes > BigInt(MAX_RESTORE_BYTES)) {
      throw new StoreError(`bucket entry declares blob ${digest} of ${bytes} bytes`);
    }
    if (seen.has(digest)) throw new StoreError(`bucket entry lists blob ${digest} twice`);
    seen.add(digest);
    blobs.push({ digest, bytes: Number(bytes) });
  }
  const header = buf.subarray(fixed + n * RECORD_BYTES);
  if (!header.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) {
    throw new StoreError('bucket entry holds no pack header');
  }
  return { blobs, header };
}

/** The blobs of a pack file we wrote ourselves (exportPack): where each frame lies. */
interface PackLayout {
  readonly header: Buffer;
  readonly blobs: (BlobRef & { readonly offset: number })[];
}

async function readOwnPack(file: string): Promise<PackLayout> {
  const fh = await fs.open(file, 'r');
  try {
    const read = async (at: number, n: number): Promise<Buffer> => {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, at);
      if (bytesRead !== n) throw new StoreError(`pack ${file} is truncated`);
      return buf;
    };
    let pos = PACK_MAGIC.length + 4;
    const metaLen = (await read(pos, 4)).readUInt32BE(0);
    pos += 4 + metaLen;
    const tableLen = (await read(pos, 4)).readUInt32BE(0);
    pos += 4 + tableLen;
    const header = await read(0, pos);
    const blobs: PackLayout['blobs'] = [];
    for (;;) {
      const rec = await read(pos, RECORD_BYTES);
      const bytes = Number(rec.readBigUInt64BE(DIGEST_BYTES));
      pos += RECORD_BYTES;
      if (bytes === 0 && rec.subarray(0, DIGEST_BYTES).every((b) => b === 0)) break;
      blobs.push({ digest: rec.subarray(0, DIGEST_BYTES).toString('hex'), bytes, offset: pos });
      pos += bytes;
    }
    return { header, blobs };
  } finally {
    await fh.close();
  }
}

export interface BucketHit {
  readonly matchedKey: string;
  readonly scope: string;
}

export interface BucketSaveResult {
  readonly status: 'saved' | 'already present';
  /** Bytes sent: the blobs the bucket lacked and the entry object. */
  readonly uploadedBytes: number;
  readonly blobs: number;
  readonly uploadedBlobs: number;
}

/**
 * The tier. Like the runner cache's, a failure switches it off for the rest of the step with one
 * warning that says what to fix; every operation is bounded by `timeoutMs` (`remote-timeout`).
 */
export class BucketTier {
  disabledReason: string | undefined;
  readonly layout: BucketLayout;
  readonly scopes: { read: string[]; write: string };
  private checked = false;

  constructor(
    readonly config: BucketConfig,
    private readonly timeoutMs: number,
    private readonly client: BucketClient = openBucketClient(config),
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.layout = new BucketLayout(config.prefix);
    this.scopes = scopesOf(env);
  }

  get where(): string {
    return `s3://${this.config.name}/${this.config.prefix}`;
  }

  private off(err: unknown, what: string): void {
    const reason =
      err instanceof DeadlineError ? errorMessage(err) : bucketProblem(err, this.config);
    this.disabledReason = `${what} failed: ${reason}`;
    core.warning(
      `Bucket ${this.where}: ${this.disabledReason}; not using it for the rest of this step.`,
    );
  }

  /**
   * One listing call before the first use: it proves the credentials, the endpoint and the
   * bucket at once, so a wrong input is named before any transfer.
   */
  private async check(signal: AbortSignal): Promise<void> {
    if (this.checked) return;
    await this.client.list(`${this.layout.prefix}layout-probe/`, signal);
    this.checked = true;
  }

  /** Exact key in any readable scope first, then each restore key's newest entry. */
  async lookup(
    key: string,
    restoreKeys: readonly string[],
  ): Promise<{
    exact?: BucketHit;
    fallback?: BucketHit;
  }> {
    if (this.disabledReason) return {};
    const limit = deadline(this.timeoutMs, 'the bucket lookup');
    try {
      await this.check(limit.signal);
      let exact: BucketHit | undefined;
      for (const scope of this.scopes.read) {
        if (await this.client.head(this.layout.entry(scope, key), limit.signal)) {
          exact = { matchedKey: key, scope };
          break;
        }
      }
      let fallback: BucketHit | undefined;
      search: for (const scope of this.scopes.read) {
        for (const prefix of restoreKeys) {
          const found = await this.client.list(this.layout.entry(scope, prefix), limit.signal);
          const newest = newestEntry(this.layout, found, key);
          if (newest) {
            fallback = { matchedKey: newest, scope };
            break search;
          }
        }
      }
      return { ...(exact ? { exact } : {}), ...(fallback ? { fallback } : {}) };
    } catch (err) {
      this.off(err, 'lookup');
      return {};
    }
  }

  /** The entry object of `hit`, decoded (untrusted). */
  private async fetchEntry(hit: BucketHit, signal: AbortSignal): Promise<ParsedEntry | undefined> {
    const got = await this.client.get(this.layout.entry(hit.scope, hit.matchedKey), signal);
    if (!got) return undefined;
    const max =
      BUCKET_MAGIC.length + 8 + MAX_ENTRY_BLOBS * RECORD_BYTES + 2 * MAX_HEADER_BYTES + 64;
    if (got.size > max) throw new StoreError(`bucket entry of ${got.size} bytes is too large`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of got.body) {
      n += c.length;
      if (n > max) throw new StoreError('bucket entry is larger than it said');
      chunks.push(Buffer.from(c));
    }
    return decodeEntry(Buffer.concat(chunks));
  }

  /**
   * Downloads the entry and its blobs into a pack file under `workDir` (a blob `store` holds is
   * copied from it instead), nothing of it verified yet: the caller restores it as it restores a
   * runner-cache download (LocalStore.restorePack, which verifies every byte) and removes the
   * file when done. Throws on any failure, the file removed; a transfer that ran out of time
   * also switches the tier off.
   */
  async fetchPack(hit: BucketHit, store: LocalStore, workDir: string): Promise<Fetched> {
    const limit = deadline(this.timeoutMs, 'the bucket download');
    await fs.mkdir(workDir, { recursive: true });
    const pack = tempName(workDir, 'bucket-pack');
    try {
      const entry = await this.fetchEntry(hit, limit.signal);
      if (!entry) throw new StoreError(`entry ${hit.matchedKey} vanished from the bucket`);
      const total = entry.blobs.reduce((a, b) => a + b.bytes, 0);
      const free = await freeBytes(workDir);
      if (total > MAX_RESTORE_BYTES || (free !== undefined && 2 * total > free)) {
        throw new StoreError(
          `entry ${hit.matchedKey} declares ${formatBytes(total)} of blobs; ` +
            `${free === undefined ? '' : `${formatBytes(free)} free, `}at most ${formatBytes(MAX_RESTORE_BYTES)} taken`,
        );
      }
      // The pack: header, then each blob record at the place its declared length gives it.
      const fh = await fs.open(pack, 'wx');
      let downloaded = 0;
      try {
        await fh.write(entry.header, 0, entry.header.length, 0);
        let pos = entry.header.length;
        const places = entry.blobs.map((b) => {
          const at = pos;
          pos += RECORD_BYTES + b.bytes;
          return { ...b, at };
        });
        const end = Buffer.alloc(RECORD_BYTES);
        await fh.write(end, 0, end.length, pos);
        /** Writes `body` as the blob's frame; throws when it is not exactly the listed length. */
        const place = async (
          b: (typeof places)[number],
          body: AsyncIterable<Uint8Array>,
          count: boolean,
        ): Promise<void> => {
          let at = b.at + RECORD_BYTES;
          let left = b.bytes;
          for await (const c of body) {
            if (c.length > left) throw new StoreError(`blob ${b.digest} is longer than listed`);
            await fh.write(c, 0, c.length, at);
            at += c.length;
            left -= c.length;
            if (count) downloaded += c.length;
          }
          if (left !== 0) throw new StoreError(`blob ${b.digest} is shorter than listed`);
        };
        await inParallel(places, CONCURRENCY, async (b) => {
          const rec = Buffer.alloc(RECORD_BYTES);
          Buffer.from(b.digest, 'hex').copy(rec, 0);
          rec.writeBigUInt64BE(BigInt(b.bytes), DIGEST_BYTES);
          await fh.write(rec, 0, rec.length, b.at);
          // A blob the local store holds is copied from it, not downloaded (verified alike).
          if (await this.copyLocal(store, b, place)) return;
          const got = await this.client.get(this.layout.blob(b.digest), limit.signal);
          if (!got) throw new StoreError(`blob ${b.digest} of ${hit.matchedKey} is missing`);
          await place(b, got.body, true);
        });
      } finally {
        await fh.close();
      }
      return { packs: [{ file: pack, key: hit.matchedKey }], bytes: downloaded };
    } catch (err) {
      await fs.rm(pack, { force: true }).catch(() => undefined);
      if (err instanceof DeadlineError || limit.signal.aborted) {
        this.disabledReason = errorMessage(limit.error);
      }
      throw err;
    }
  }

  /** Fills the blob's place from the local store's copy; false when there is none to use. */
  private async copyLocal<B extends BlobRef>(
    store: LocalStore,
    b: B,
    place: (b: B, body: AsyncIterable<Uint8Array>, count: boolean) => Promise<void>,
  ): Promise<boolean> {
    try {
      const file = store.blobFile(b.digest);
      const st = await fs.stat(file).catch(() => undefined);
      if (st?.size !== b.bytes) return false;
      await place(b, createReadStream(file), false);
      return true;
    } catch {
      return false; // removed meanwhile, or not what the entry lists: download it instead
    }
  }

  /**
   * Uploads the entry `key` of `store` into this job's scope: missing blobs first (those of
   * `basis`, the entry restored, are the first guess of what is there), the entry last.
   */
  async save(
    store: LocalStore,
    key: string,
    basis: string | undefined,
    workDir: string,
  ): Promise<BucketSaveResult> {
    const limit = deadline(this.timeoutMs, 'the bucket upload');
    const packFile = tempName(workDir, 'bucket-save');
    try {
      await this.check(limit.signal);
      const entryKey = this.layout.entry(this.scopes.write, key);
      if (await this.client.head(entryKey, limit.signal)) {
        return { status: 'already present', uploadedBytes: 0, blobs: 0, uploadedBlobs: 0 };
      }
      await store.exportPack(key, packFile);
      const pack = await readOwnPack(packFile);
      const known = new Set<string>();
      if (basis) {
        for (const scope of this.scopes.read) {
          const e = await this.fetchEntry({ matchedKey: basis, scope }, limit.signal).catch(
            () => undefined,
          );
          if (e) {
            for (const b of e.blobs) known.add(b.digest);
            break;
          }
        }
      }
      // What the bucket has: HEAD the blobs the basis did not list; refresh old ones we keep.
      const missing: PackLayout['blobs'] = [];
      const now = Date.now();
      await inParallel(pack.blobs, CONCURRENCY, async (b) => {
        const objectKey = this.layout.blob(b.digest);
        if (known.has(b.digest)) return;
        const there = await this.client.head(objectKey, limit.signal);
        if (!there || there.size !== b.bytes) missing.push(b);
        else if (now - there.lastModified > REFRESH_AFTER_MS) {
          await this.client.refresh(objectKey, limit.signal);
        }
      });
      let uploadedBytes = 0;
      const fh = await fs.open(packFile, 'r');
      try {
        const readRange = async (offset: number, length: number): Promise<Buffer> => {
          const buf = Buffer.alloc(length);
          const { bytesRead } = await fh.read(buf, 0, length, offset);
          if (bytesRead !== length) throw new StoreError('the exported pack is truncated');
          return buf;
        };
        missing.sort((a, b) => compareBytes(a.digest, b.digest));
        // Each upload holds its blob (or one part) in memory: small blobs go CONCURRENCY at a
        // time, large ones LARGE_CONCURRENCY, so at most ~80 MiB are held at once.
        const upload = async (b: PackLayout['blobs'][number]): Promise<void> => {
          const objectKey = this.layout.blob(b.digest);
          if (b.bytes > MULTIPART_THRESHOLD) {
            await this.client.putMultipart(
              objectKey,
              b.bytes,
              MULTIPART_PART_BYTES,
              (off, len) => readRange(b.offset + off, len),
              2,
              limit.signal,
            );
          } else {
            await this.client.put(objectKey, await readRange(b.offset, b.bytes), limit.signal);
          }
          uploadedBytes += b.bytes;
        };
        const small = missing.filter((b) => b.bytes <= SMALL_BLOB_BYTES);
        const large = missing.filter((b) => b.bytes > SMALL_BLOB_BYTES);
        // Both settle before the pack file closes; the first failure is the one reported.
        const settled = await Promise.allSettled([
          inParallel(small, CONCURRENCY, upload),
          inParallel(large, LARGE_CONCURRENCY, upload),
        ]);
        for (const r of settled) if (r.status === 'rejected') throw r.reason;
      } finally {
        await fh.close();
      }
      const entry = encodeEntry(pack.blobs, pack.header);
      await this.client.put(entryKey, entry, limit.signal);
      uploadedBytes += entry.length;
      return {
        status: 'saved',
        uploadedBytes,
        blobs: pack.blobs.length,
        uploadedBlobs: missing.length,
      };
    } catch (err) {
      if (err instanceof DeadlineError || limit.signal.aborted) {
        this.disabledReason = errorMessage(limit.error);
        throw limit.error;
      }
      // One warning, from the caller's phase handler, with what to fix.
      this.disabledReason = bucketProblem(err, this.config);
      throw new StoreError(this.disabledReason);
    } finally {
      await fs.rm(packFile, { force: true }).catch(() => undefined);
    }
  }
}

/** The newest entry among `found` (by Last-Modified, then key in byte order), not `exclude`. */
function newestEntry(
  layout: BucketLayout,
  found: readonly BucketObject[],
  exclude: string,
): string | undefined {
  let best: { key: string; at: number } | undefined;
  for (const o of found) {
    const parsed = layout.parseEntry(o.key);
    if (!parsed || parsed.key === exclude) continue;
    if (
      !best ||
      o.lastModified > best.at ||
      (o.lastModified === best.at && compareBytes(parsed.key, best.key) > 0)
    ) {
      best = { key: parsed.key, at: o.lastModified };
    }
  }
  return best?.key;
}

/** The tier for `config` (the bucket inputs), or undefined when no bucket is configured. */
export function openBucket(
  config: BucketConfig | undefined,
  timeoutMs: number,
): BucketTier | undefined {
  return config ? new BucketTier(config, timeoutMs) : undefined;
}
