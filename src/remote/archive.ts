/**
 * Reading a remote entry's archive without trusting it. @actions/cache writes a tar (zstd or gzip)
 * whose one member is our pack file, named by a path relative to the workspace (often climbing
 * out with '..', since the pack lives under RUNNER_TEMP). Nothing is extracted by member name:
 * the archive must hold exactly one regular file whose last path segment is the pack's name, and
 * its bytes are streamed to a file we choose. Any other member (a second file, a link, a device,
 * a directory) makes the whole entry untrusted.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { RemoteError, UnsafeEntryError } from '../errors.js';
import type { Compression } from './twirp.js';
import { PACK_NAME } from './twirp.js';

function decompressor(compression: Compression): NodeJS.ReadWriteStream {
  if (compression === 'gzip') return zlib.createGunzip();
  const z = zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream };
  if (!z.createZstdDecompress)
    throw new RemoteError('this Node.js has no zstd; Node 24 is required');
  return z.createZstdDecompress();
}

/** Extract the pack from `archive` into `dest`; throws UnsafeEntryError on anything unexpected. */
export async function extractPack(
  archive: string,
  compression: Compression,
  dest: string,
): Promise<void> {
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
    const out = createWriteStream(dest, { flags: 'wx' });
    pipeline(stream, out).then(
      () => next(),
      (err: unknown) => extract.destroy(err as Error),
    );
  });
  try {
    await pipeline(createReadStream(archive), decompressor(compression), extract);
  } catch (err) {
    if (err instanceof Error && (err.name === 'UnsafeEntryError' || err.name === 'RemoteError'))
      throw err;
    throw new RemoteError(`the remote archive could not be read: ${(err as Error).message}`);
  }
  if (found !== 1) throw new UnsafeEntryError('the remote archive does not hold a clyde pack');
}
