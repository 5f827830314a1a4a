/**
 * Reading a remote entry's archive without trusting it. @actions/cache writes a tar (zstd or gzip)
 * whose one member is our pack file, named by a path relative to the workspace (often climbing
 * out with '..', since the pack lives under RUNNER_TEMP). Nothing is extracted by member name:
 * the archive must hold exactly one regular file whose last path segment is the pack's name, and
 * its bytes are streamed to a file we choose. Any other member (a second file, a link, a device,
 * a directory) makes the whole entry untrusted.
 *
 * The sizes the archive declares are untrusted too (a download of kilobytes can declare a pack
 * of gigabytes: a tar bomb). The pack member's declared size is checked against a budget
 * (`packBudget`) before anything is written, and the bytes that flow are counted: the pack
 * written may not exceed what its header declared, and the decompressed tar may not run on
 * far beyond the budget.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { RemoteError, UnsafeEntryError } from '../errors.js';
import { formatBytes } from '../util/bytes.js';
import { freeBytes } from '../util/fsx.js';
import type { Compression } from './twirp.js';
import { PACK_NAME } from './twirp.js';

/** The largest pack an entry may hold: GitHub's runner-cache quota for a whole repository. */
export const MAX_PACK_BYTES = 10 * 1024 ** 3;
/**
 * A pack is made of zstd frames already, which the archive's own compression hardly shrinks
 * (the header's JSON the most, about tenfold; gzip can reach 1032 at best, zstd far more): a pack more than this many times its archive
 * is a bomb, whatever its size. Below MIN_RATIO_BUDGET the ratio is not applied.
 */
export const MAX_EXPANSION = 256;
export const MIN_RATIO_BUDGET = 64 * 1024 * 1024;
/** Room the tar's own headers and padding may take beyond the pack. */
const TAR_SLACK = 1024 * 1024;

export interface PackLimits {
  /** The largest pack accepted, whatever the room (default MAX_PACK_BYTES; tests lower it). */
  readonly maxBytes?: number;
}

/**
 * The most bytes the pack of `archive` may take, and why: the least of the absolute maximum,
 * MAX_EXPANSION times the archive, and the free space where the pack is written.
 */
export async function packBudget(
  archive: string,
  dest: string,
  limits: PackLimits = {},
): Promise<{ bytes: number; reason: string }> {
  const max = limits.maxBytes ?? MAX_PACK_BYTES;
  const archiveBytes = (await fs.stat(archive)).size;
  const ratio = Math.max(MIN_RATIO_BUDGET, archiveBytes * MAX_EXPANSION);
  const free = await freeBytes(path.dirname(dest));
  const options: { bytes: number; reason: string }[] = [
    { bytes: max, reason: `the largest pack accepted (${formatBytes(max)})` },
    {
      bytes: ratio,
      reason: `${MAX_EXPANSION} times its ${formatBytes(archiveBytes)} archive (${formatBytes(ratio)})`,
    },
  ];
  if (free !== undefined) {
    options.push({
      bytes: free,
      reason: `the free space in ${path.dirname(dest)} (${formatBytes(free)})`,
    });
  }
  return options.reduce((a, b) => (b.bytes < a.bytes ? b : a));
}

/** Passes bytes on until more than `limit` have flowed, then fails with `tooMany()`. */
function counter(limit: number, tooMany: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(tooMany());
      else cb(null, chunk);
    },
  });
}

function decompressor(compression: Compression): NodeJS.ReadWriteStream {
  if (compression === 'gzip') return zlib.createGunzip();
  const z = zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream };
  if (!z.createZstdDecompress)
    throw new RemoteError('this Node.js has no zstd; Node 24 is required');
  return z.createZstdDecompress();
}

/**
 * Extract the pack from `archive` into `dest`; throws UnsafeEntryError on anything unexpected,
 * a pack larger than its budget included (refused before a byte of it is written).
 */
export async function extractPack(
  archive: string,
  compression: Compression,
  dest: string,
  limits: PackLimits = {},
): Promise<void> {
  const budget = await packBudget(archive, dest, limits);
  const extract = tarStream.extract();
  let found = 0;
  extract.on('entry', (header, stream, next) => {
    // A refused archive destroys the extractor, which errors this member's stream too; the
    // error is reported once, through the pipeline below.
    stream.on('error', () => undefined);
    const name = header.name.replace(/\\/g, '/').replace(/\/+$/, '');
    const base = name.slice(name.lastIndexOf('/') + 1);
    if (header.type !== 'file' || base !== PACK_NAME || found > 0) {
      stream.resume();
      extract.destroy(
        new UnsafeEntryError(
          `the remote archive holds an unexpected member '${header.name}' (${header.type ?? 'unknown'}); refusing it`,
        ),
      );
      return;
    }
    found++;
    const declared = header.size ?? 0;
    if (declared > budget.bytes) {
      stream.resume();
      extract.destroy(
        new UnsafeEntryError(
          `the remote archive's pack declares ${formatBytes(declared)}, more than ${budget.reason}; refusing it`,
        ),
      );
      return;
    }
    const out = createWriteStream(dest, { flags: 'wx' });
    const written = counter(
      declared,
      () => new UnsafeEntryError(`the remote archive's pack runs past its declared size`),
    );
    pipeline(stream, written, out).then(
      () => next(),
      (err: unknown) => extract.destroy(err as Error),
    );
  });
  try {
    await pipeline(
      createReadStream(archive),
      decompressor(compression),
      counter(
        budget.bytes + TAR_SLACK,
        () =>
          new UnsafeEntryError(
            `the remote archive unpacks to more than ${budget.reason}; refusing it`,
          ),
      ),
      extract,
    );
  } catch (err) {
    if (err instanceof Error && (err.name === 'UnsafeEntryError' || err.name === 'RemoteError'))
      throw err;
    throw new RemoteError(`the remote archive could not be read: ${(err as Error).message}`);
  }
  if (found !== 1) throw new UnsafeEntryError('the remote archive does not hold a clyde pack');
}
