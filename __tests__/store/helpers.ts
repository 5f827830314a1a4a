/** Test helpers for the store tests: temp trees, tree snapshots, hand-made packs. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sha256 } from '../../src/util/bytes.js';
import { zstdFrame, type FrameBackend } from '../../test-support/store/zstd.js';
import { mountCaseFolding } from '../../test-support/casefold.js';
import { packOf, type PackOptions, type PackSpec } from '../../test-support/store/tables.js';

export interface Sandbox {
  readonly base: string;
  /** The store root. */
  readonly store: string;
  /** A workspace with outputs under it. */
  readonly ws: string;
  /** A sentinel directory outside both: must stay empty. */
  readonly outside: string;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-store-test-'));
  const store = path.join(base, 'store');
  const ws = path.join(base, 'ws');
  const outside = path.join(base, 'outside');
  await fs.mkdir(ws);
  await fs.mkdir(outside);
  return {
    base,
    store,
    ws,
    outside,
    cleanup: async () => {
      // Restores may leave read-only directories: make everything writable first.
      await chmodTree(base);
      await fs.rm(base, { recursive: true, force: true });
    },
  };
}

async function chmodTree(p: string): Promise<void> {
  const st = await fs.lstat(p).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await fs.chmod(p, 0o700);
  for (const name of await fs.readdir(p)) await chmodTree(path.join(p, name));
}

/** Writes files: path -> content (string or Buffer); a trailing '/' makes a directory. */
export async function writeTree(
  root: string,
  files: Record<string, string | Buffer>,
): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    if (rel.endsWith('/')) {
      await fs.mkdir(abs, { recursive: true });
      continue;
    }
    await fs.mkdir(path.dirname(abs), { recursive: true });
    await fs.writeFile(abs, content);
  }
}

export interface TreeItem {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number;
  readonly content?: string;
  readonly target?: string;
}

/** Everything under `root` (lstat, no following): relative path -> type, mode, content. */
export async function snapshotTree(root: string): Promise<Record<string, TreeItem>> {
  const out: Record<string, TreeItem> = {};
  async function visit(dir: string, rel: string): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await fs.lstat(abs);
      const mode = st.mode & 0o777;
      if (st.isDirectory()) {
        out[r] = { type: 'dir', mode };
        await visit(abs, r);
      } else if (st.isFile()) {
        out[r] = { type: 'file', mode, content: sha256(await fs.readFile(abs)) };
      } else if (st.isSymbolicLink()) {
        out[r] = { type: 'symlink', mode: 0, target: await fs.readlink(abs) };
      } else {
        out[r] = { type: 'other', mode };
      }
    }
  }
  await visit(root, '');
  return out;
}

export interface PackBlob {
  readonly digest: string;
  readonly frame: Buffer;
}

/**
 * A pack in the documented format, built by hand (so tests can make broken ones): the header
 * is the meta with a manifest (made into its table) or a table, or a string for the meta as it
 * is (test-support/store/tables.ts `packOf`).
 */
export function buildPack(
  header: PackSpec | string,
  blobs: readonly PackBlob[],
  opts: PackOptions = {},
): Buffer {
  return packOf(
    header,
    blobs.map((b) => [b.digest, b.frame] as const),
    opts,
  );
}

export function blobOf(
  content: string | Buffer,
  backend: FrameBackend = 'native',
): PackBlob & { size: number } {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return { digest: sha256(buf), frame: zstdFrame(buf, backend), size: buf.length };
}

export function fileEntry(
  p: string,
  content: string | Buffer,
  mode = 0o644,
): Record<string, unknown> {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return {
    path: p,
    type: 'file',
    mode,
    size: buf.length,
    mtimeMs: 1_600_000_000_000,
    digest: sha256(buf),
  };
}

export function dirEntry(p: string, mode = 0o755): Record<string, unknown> {
  return { path: p, type: 'dir', mode, size: 0, mtimeMs: 1_600_000_000_000 };
}

export function linkEntry(p: string, target: string): Record<string, unknown> {
  return { path: p, type: 'symlink', mode: 0o777, size: 0, mtimeMs: 1_600_000_000_000, target };
}

/** A pack's meta for `key`; its hash is the key's own (sha256 of the key) unless given. */
export function packMeta(key: string, hash = sha256(key)): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    schema: 1,
    key,
    package: 'pkg',
    version: '1.0.0',
    hash,
    platform: 'linux-x64',
    variant: 'release',
    createdAt: now,
    lastAccessAt: now,
    sizeBytes: 0,
    storedBytes: 0,
    files: 0,
    roots: ['out'],
  };
}

export function dirManifest(entries: readonly Record<string, unknown>[], name = 'out'): unknown {
  return {
    schema: 1,
    roots: [{ name, kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000, entries }],
  };
}

/** Run `fn` in a fresh sandbox and clean it up afterwards, whatever happens. */
export async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await sandbox();
  try {
    await fn(sb);
  } finally {
    await sb.cleanup();
  }
}

/**
 * Runs `fn` in a sandbox on a case-insensitive, case-preserving mount (test-support/casefold.ts):
 * its base is the mounted directory, so store, workspace and the outside sentinel are all on
 * it. `around` is the directory holding the mount: it holds only `backing` and `mnt`, and must
 * still when `fn` is done (a path that climbs out of the mount lands there).
 */
export async function withFoldingSandbox(
  fn: (sb: Sandbox, around: string) => Promise<void>,
): Promise<void> {
  const mount = await mountCaseFolding();
  const base = mount.dir;
  const sb: Sandbox = {
    base,
    store: path.join(base, 'store'),
    ws: path.join(base, 'ws'),
    outside: path.join(base, 'outside'),
    cleanup: () => mount.close(),
  };
  try {
    await fs.mkdir(sb.ws);
    await fs.mkdir(sb.outside);
    await fn(sb, path.dirname(base));
  } finally {
    await chmodTree(base).catch(() => {});
    await sb.cleanup();
  }
}
