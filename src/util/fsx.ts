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
    await rename(tmp, dest);
  } catch (err) {
    // A failed write (a full disk, say) must not leave its temp file taking the space.
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** How long a rename keeps retrying on Windows, as graceful-fs does (and for the same reason). */
export const RENAME_RETRY_MS = 60_000;
const BUSY_CODES: ReadonlySet<string> = new Set(['EPERM', 'EACCES', 'EBUSY']);

/** What `rename` needs from its surroundings; tests inject Windows and a failing rename. */
export interface RenameHost {
  readonly platform: NodeJS.Platform;
  readonly rename: (from: string, to: string) => Promise<void>;
  /** Whether `p` is a directory (false when it is missing). */
  readonly isDirectory: (p: string) => Promise<boolean>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

const NATIVE_RENAME: RenameHost = {
  platform: process.platform,
  rename: (from, to) => fs.rename(from, to),
  isDirectory: async (p) => (await fs.lstat(p).catch(() => undefined))?.isDirectory() === true,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => Date.now(),
};

/**
 * The store's one rename. On Windows a file that was just written is often held open for a
 * moment by an antivirus scanner or the search indexer, and renaming it (or over it) fails with
 * EPERM, EACCES or EBUSY until they let go: there the rename is retried with a growing pause
 * (10 ms more each time, at most 100 ms) for up to RENAME_RETRY_MS, as graceful-fs does, then the
 * last error is thrown. Elsewhere those errors mean what they say and are thrown at once, as is
 * every other error on every platform (ENOENT: the caller may make the directory and call again).
 */
export async function rename(
  from: string,
  to: string,
  host: RenameHost = NATIVE_RENAME,
): Promise<void> {
  const start = host.now();
  let pause = 0;
  for (;;) {
    try {
      await host.rename(from, to);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (host.platform !== 'win32' || !BUSY_CODES.has(code)) throw err;
      if (host.now() - start >= RENAME_RETRY_MS || (await host.isDirectory(to))) throw err;
      pause = Math.min(pause + 10, 100);
      await host.sleep(pause);
    }
  }
}

/** A path module: `node:path` for this machine, or `path.win32` / `path.posix` in tests. */
export type PathRules = path.PlatformPath;

/**
 * `child` relative to `parent` when `child` is `parent` ('') or lies inside it, else undefined
 * (both absolute). Decided segment by segment: only a first segment that is exactly `..` leaves
 * `parent`, so `..cache` is inside. Windows rules compare case-insensitively and a path on
 * another drive is outside.
 */
export function relativeInside(
  parent: string,
  child: string,
  rules: PathRules = path,
): string | undefined {
  const rel = rules.relative(parent, child);
  if (rel === '..' || rel.startsWith(`..${rules.sep}`) || rules.isAbsolute(rel)) return undefined;
  return rel;
}

/** True when `child` is `parent` or lies inside it (both absolute); see relativeInside. */
export function isInside(parent: string, child: string, rules: PathRules = path): boolean {
  return relativeInside(parent, child, rules) !== undefined;
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
