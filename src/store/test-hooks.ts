/**
 * Test-only fault hooks, inert unless their environment variables are set (the fault tests set
 * them in child processes they then kill).
 *
 * - `CLYDE_STORE_TEST_PAUSE_AT=<point>`: at that point the process writes its pid to the file
 *   named by `CLYDE_STORE_TEST_PAUSE_MARKER` and waits forever, so a test can SIGKILL it there.
 * - `CLYDE_STORE_TEST_RESUME_FILE=<file>`: with the pause, the process goes on once that file
 *   exists (a test acts on the store meanwhile, as a concurrent job would).
 * - `CLYDE_STORE_TEST_ENOSPC_AFTER=<n>`: blob writes after the n-th fail with ENOSPC, as on a
 *   full disk (for machines where a small tmpfs cannot be mounted).
 * - `CLYDE_STORE_TEST_PRECLAIM=<digest>,...`: a save starts with the first 64 bits of these
 *   digests claimed, as if other content of the save shared them (a prefix collision).
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { BlobStore } from './blobs.js';

export const PAUSE_AT_ENV = 'CLYDE_STORE_TEST_PAUSE_AT';
export const PAUSE_MARKER_ENV = 'CLYDE_STORE_TEST_PAUSE_MARKER';
export const RESUME_FILE_ENV = 'CLYDE_STORE_TEST_RESUME_FILE';
export const ENOSPC_AFTER_ENV = 'CLYDE_STORE_TEST_ENOSPC_AFTER';
export const PRECLAIM_ENV = 'CLYDE_STORE_TEST_PRECLAIM';

/** The digests a save must treat as claimed before it starts (none unless the env asks). */
export function preclaimed(): string[] {
  return (process.env[PRECLAIM_ENV] ?? '').split(',').filter((d) => /^[0-9a-f]{64}$/.test(d));
}

export type PausePoint =
  /** save: every blob written, nothing else yet. */
  | 'after-blobs'
  /** save/import: the entry's artifact and meta.json written in tmp/. */
  | 'after-artifact-tmp'
  /** commit, under the lock: before the entry directory is renamed into place. */
  | 'before-rename'
  /** commit, under the lock: the entry is in place, the index not yet updated. */
  | 'before-index'
  /** removal, under the lock: the index is updated, directories and blobs not yet deleted. */
  | 'after-remove-index';

export async function pausePoint(point: PausePoint): Promise<void> {
  if (process.env[PAUSE_AT_ENV] !== point) return;
  const marker = process.env[PAUSE_MARKER_ENV];
  if (marker !== undefined) writeFileSync(marker, String(process.pid));
  const resume = process.env[RESUME_FILE_ENV];
  if (resume !== undefined) {
    while (!existsSync(resume)) await new Promise((r) => setTimeout(r, 20));
    return;
  }
  // A timer keeps the process alive; the promise never settles.
  setInterval(() => undefined, 60_000);
  await new Promise<never>(() => undefined);
}

/** Makes blob writes fail with ENOSPC after a number of them when the env variable asks. */
export function injectBlobFaults(blobs: BlobStore): void {
  const raw = process.env[ENOSPC_AFTER_ENV];
  if (raw === undefined || !/^\d+$/.test(raw)) return;
  let left = Number(raw);
  const put = blobs.put.bind(blobs);
  blobs.put = async (digest, content) => {
    if ((await blobs.ownSize(digest)) === undefined && left-- <= 0) {
      const err = new Error('ENOSPC: no space left on device, write (injected)');
      (err as NodeJS.ErrnoException).code = 'ENOSPC';
      throw err;
    }
    return put(digest, content);
  };
}
