import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** A unique name for a temporary file or directory inside `dir`. */
export function tempName(dir: string, hint = 'tmp'): string {
  return path.join(dir, `${hint}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Write `data` to `dest` atomically: a temp file in `tmpDir` (same filesystem as `dest`), then a
 * rename over `dest`. A process killed at any point leaves either the old file or the new one.
 * There is no fsync: everything written this way is cache data that is checked when read back
 * (the index's checksum, blob digests, manifest and meta parsing), so a power loss that leaves a
 * renamed file short costs misses, never wrong content; and an fsync per file would cost the
 * saves more than everything else they write (store benchmark).
 */
export async function writeFileAtomic(
  dest: string,
  data: string | Uint8Array,
  tmpDir = path.dirname(dest),
): Promise<void> {
  await fs.mkdir(tmpDir, { recursive: true });
  const tmp = tempName(tmpDir, path.basename(dest));
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.rename(tmp, dest);
  } catch (err) {
    // A failed write (a full disk, say) must not leave its temp file taking the space.
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** True when `child` is `parent` or lies inside it (both absolute, already resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bytes an unprivileged process may still write on the filesystem holding `p` (or its nearest
 * existing ancestor); undefined where the platform cannot tell.
 */
export async function freeBytes(p: string): Promise<number | undefined> {
  let cur = path.resolve(p);
  for (;;) {
    try {
      const st = await fs.statfs(cur);
      return st.bavail * st.bsize;
    } catch (err) {
      const up = path.dirname(cur);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || up === cur) return undefined;
      cur = up;
    }
  }
}
