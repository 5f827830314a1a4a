/**
 * Deterministic entry contents for the store's crash and concurrency tests: the parent and the
 * child processes agree on what a key's files are, so either side can check a restore.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { SaveRequest } from '../../src/store/index.js';

/** `n` pseudo-random bytes derived from `seed`. */
export function bytesFrom(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let o = 0; o < n; o += block.length) {
    block.copy(out, o);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** The three files every key shares, built once (no caller changes them). */
let sharedFiles: Record<string, Buffer> | undefined;
function shared(): Record<string, Buffer> {
  sharedFiles ??= {
    'shared/common.txt': Buffer.from('common to every entry\n'.repeat(4000)),
    'shared/big.bin': bytesFrom('big', 200_000),
    'shared/nested/mid.bin': bytesFrom('mid', 70_000),
  };
  return sharedFiles;
}

/**
 * The files of `key`'s entry: three shared by every key, two its own. Every file is above the
 * store's small-file size (snapshot.ts SMALL_FILE), so each is a blob of its own.
 */
export function contentFor(key: string): Record<string, Buffer> {
  return {
    ...shared(),
    [`own/${key}.txt`]: Buffer.from(`${key}\n`.repeat(70_000 / (key.length + 1) + 1)),
    'own/data.bin': bytesFrom(`data-${key}`, 70_000),
  };
}

export async function writeContent(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
}

/** Every file under `dir` (relative posix path -> content). */
export async function readContent(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  async function visit(abs: string, rel: string): Promise<void> {
    for (const d of await fs.readdir(abs, { withFileTypes: true })) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) await visit(path.join(abs, d.name), r);
      else out[r] = await fs.readFile(path.join(abs, d.name));
    }
  }
  await visit(dir, '');
  return out;
}

export function sameContent(a: Record<string, Buffer>, b: Record<string, Buffer>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k]!.equals(b[k] as Buffer));
}

export function requestFor(
  key: string,
  dir: string,
  extra: Partial<SaveRequest> = {},
): SaveRequest {
  return {
    key,
    package: 'pkg',
    version: '1.0.0',
    hash: createHash('sha256').update(key).digest('hex'),
    platform: 'linux-x64',
    variant: 'release',
    roots: [{ name: 'out', absPath: dir }],
    ...extra,
  };
}

/**
 * What the fault tests demand after every fault: the store opens, `verify()` finds nothing
 * wrong, and every entry it lists restores byte-identically to `contentFor(key)`. Returns the
 * listed keys and a list of problems (empty when healthy).
 */
export async function checkHealthy(
  root: string,
  scratch: string,
): Promise<{ keys: string[]; problems: string[] }> {
  const { LocalStore: Store } = await import('../../src/store/index.js');
  const store = await Store.open(root, { lockStaleMs: 2_000 });
  const report = await store.verify({ deep: true });
  const problems = [...report.problems];
  const keys = (await store.list()).map((e) => e.key);
  for (const [i, key] of keys.entries()) {
    const dest = path.join(scratch, `check-${i}`, 'out');
    try {
      await store.restore(key, [{ name: 'out', absPath: dest }]);
      if (!sameContent(await readContent(dest), contentFor(key))) {
        problems.push(`${key}: restored content differs`);
      }
    } catch (err) {
      problems.push(`${key}: ${err}`);
    }
    await fs.rm(path.dirname(dest), { recursive: true, force: true });
  }
  return { keys, problems };
}

/** A pack (pack.ts: magic, version, meta length, meta JSON, table, blobs) with its meta edited. */
export function editPackMeta(pack: Buffer, edit: (meta: Record<string, unknown>) => void): Buffer {
  const len = pack.readUInt32BE(12);
  const meta = JSON.parse(pack.subarray(16, 16 + len).toString('utf8')) as Record<string, unknown>;
  edit(meta);
  const body = Buffer.from(JSON.stringify(meta), 'utf8');
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32BE(body.length);
  return Buffer.concat([pack.subarray(0, 12), lenBuf, body, pack.subarray(16 + len)]);
}

/**
 * Replaces a store file (a blob, written read-only) with other bytes, as damage on disk would:
 * by a new file, which a user who is not root may make where rewriting the old one is refused.
 */
export async function replaceFile(file: string, data: Buffer | string): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.writeFile(file, data);
}
