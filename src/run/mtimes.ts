/**
 * The mtimes a restore leaves, for builds that compare them (make, and anything that rebuilds a
 * target older than one of its prerequisites). Saved mtimes cannot serve: a fresh checkout gives
 * every source the checkout time, newer than any saved output. The key's manifests can: the
 * current one and the matched entry's say which sources differ from those the outputs were built
 * from. So the outputs get the restore time, newer than every source as checked out (or edited
 * by an earlier step), and the sources that differ from the entry get a later one: a build then
 * redoes exactly what depends on them, and after an exact hit nothing.
 *
 * The sources are marked before anything is restored. A mark that fails stops the restore
 * (nothing of the entry is written); a restore that fails after the marks leaves only newer
 * mtimes on sources whose content differs from the entry, which can only make a build do more.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage, StoreError } from '../errors.js';
import type { SourceChanges } from '../key/index.js';
import { isInside } from '../util/fsx.js';

/** Sources marked at once. */
const BATCH = 64;

/**
 * Gives every source of `changes` (workspace-relative posix paths, all from this workspace's
 * own key) an mtime later than the one returned, which the caller then gives every restored
 * output. A source gone since the key was computed is skipped; any other failure throws.
 */
export async function markChangedSources(
  workspace: string,
  changes: SourceChanges,
): Promise<number> {
  const outputsAt = Date.now();
  if (changes.paths.length === 0) return outputsAt;
  // Strictly later than the outputs, and never in the future (make warns of clock skew).
  while (Date.now() <= outputsAt) await new Promise((r) => setTimeout(r, 1));
  const at = new Date();
  let lowest = Infinity;
  for (let i = 0; i < changes.paths.length; i += BATCH) {
    const stored = await Promise.all(
      changes.paths.slice(i, i + BATCH).map((rel) => mark(workspace, rel, at)),
    );
    for (const m of stored) if (m !== undefined && m < lowest) lowest = m;
  }
  // A filesystem with coarse timestamps (whole seconds) stores `at` truncated, maybe to no later
  // than `outputsAt`: the outputs then go below what it stored (older than some unchanged
  // sources too, which only makes a build do more).
  return Math.min(outputsAt, Math.floor(lowest) - 1);
}

/** Sets one source's mtime (a symlink's own); the mtime as stored, undefined when it is gone. */
async function mark(workspace: string, rel: string, at: Date): Promise<number | undefined> {
  const abs = path.join(workspace, ...rel.split('/'));
  if (rel === '' || !isInside(workspace, abs)) return undefined;
  try {
    const st = await fs.lstat(abs);
    if (st.isSymbolicLink()) await fs.lutimes(abs, at, at);
    else await fs.utimes(abs, at, at);
    return (await fs.lstat(abs)).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError(
      `could not mark ${rel} as changed since the entry (a newer mtime): ${errorMessage(err)}`,
    );
  }
}
