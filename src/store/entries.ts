/**
 * The store's files, as the rooms of the store (index-keeper.ts, save.ts, maintenance.ts) read
 * and delete them: entry directories (`<package>/<version>/<hash>/` with meta.json and the
 * artifact, its table) and blob files. Nothing here takes the lock or reads the index; the
 * rooms do that around these calls.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage, StoreError } from '../errors.js';
import { compareBytes } from '../util/bytes.js';
import { rename, tempName } from '../util/fsx.js';
import { BLOB_NAME, shardedNames } from './blob-layout.js';
import type { BlobStore } from './blobs.js';
import type { IndexEntry, NewEntry } from './index-file.js';
import type { LockSettings } from './lock.js';
import type { Manifest } from './manifest.js';
import { entryDirName, parseMeta } from './meta.js';
import { manifestOfTable } from './table-manifest.js';
import type { EntryMeta, PausePoint, StoreFaults } from './types.js';

export const META = 'meta.json';
export const ARTIFACT = 'artifact';
/** Where the files of an older layout wait for the next prune (maintenance.ts). */
export const OLD_LAYOUT = 'old-layout';
/**
 * Where earlier versions kept uncompressed copies for hard-link and clone restores; this one
 * makes none, and the next prune removes what is left (maintenance.ts `sweepOldLayout`).
 */
export const UNPACKED = 'unpacked';
/** Top-level directories that are not packages. */
export const NOT_ENTRIES = new Set(['blobs', 'tmp', 'markers', UNPACKED, 'statcache', OLD_LAYOUT]);

/** What every room of one store shares: where it is, its blobs, its lock, its test faults. */
export interface StoreContext {
  readonly root: string;
  readonly tmpDir: string;
  readonly indexPath: string;
  readonly blobs: BlobStore;
  readonly lock: LockSettings;
  readonly faults: StoreFaults;
}

/** Awaits the test fault at `point`, if one is set (LocalStoreOptions.faults). */
export async function pausePoint(ctx: StoreContext, point: PausePoint): Promise<void> {
  await ctx.faults.pause?.(point);
}

export class EntryFiles {
  constructor(private readonly ctx: StoreContext) {}

  /** The directory of the entry `<package>/<version>/<hash>`. */
  dirOf(rel: string): string {
    return path.join(this.ctx.root, ...rel.split('/'));
  }

  /** The meta of the entry in `rel`, if it is readable, valid and really holds `key`. */
  async readMetaOf(rel: string, key: string): Promise<EntryMeta | undefined> {
    try {
      const meta = await this.readMeta(rel);
      return meta.key === key && entryDirName(meta) === rel ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  /** The meta.json of the entry in `rel`, parsed and checked (throws when it is not). */
  async readMeta(rel: string): Promise<EntryMeta> {
    return parseMeta(JSON.parse(await fs.readFile(path.join(this.dirOf(rel), META), 'utf8')));
  }

  /** The entry's meta.json, with the index's lastAccessAt where a later touch moved it. */
  async metaOf(rec: IndexEntry): Promise<EntryMeta | undefined> {
    const meta = await this.readMetaOf(entryDirName(rec), rec.key);
    if (meta === undefined || !(rec.lastAccessAt > Date.parse(meta.lastAccessAt))) return meta;
    return { ...meta, lastAccessAt: new Date(rec.lastAccessAt).toISOString() };
  }

  /**
   * The artifact of the entry in `rel` (its table: table.ts) and the manifest it describes; the
   * blob store learns where its grouped files live.
   */
  async readArtifact(rel: string): Promise<{ table: Buffer; manifest: Manifest }> {
    const dir = this.dirOf(rel);
    try {
      const table = await fs.readFile(path.join(dir, ARTIFACT));
      return { table, manifest: this.tableManifest(table) };
    } catch (err) {
      if (err instanceof Error && err.name === 'UnsafeEntryError') throw err;
      throw new StoreError(`unreadable manifest in ${dir}: ${errorMessage(err)}`);
    }
  }

  /** The manifest of an artifact table; the blob store learns where its grouped files live. */
  tableManifest(body: Buffer): Manifest {
    const { manifest, locations } = manifestOfTable(body);
    this.ctx.blobs.attach(manifest, locations);
    return manifest;
  }

  /** `<package>/<version>/<hash>` of every directory that looks like an entry. */
  async scanEntryDirs(): Promise<string[]> {
    const out: string[] = [];
    const root = this.ctx.root;
    for (const pkg of await subdirs(root)) {
      if (NOT_ENTRIES.has(pkg) || pkg.endsWith('.lock')) continue;
      for (const ver of await subdirs(path.join(root, pkg))) {
        for (const hash of await subdirs(path.join(root, pkg, ver))) {
          out.push(`${pkg}/${ver}/${hash}`);
        }
      }
    }
    return out.sort(compareBytes);
  }

  /** Moves an entry directory to tmp/ (one rename, so it vanishes at once), then deletes it. */
  async deleteEntryDir(rel: string): Promise<void> {
    const trash = tempName(this.ctx.tmpDir, 'removed');
    try {
      await rename(this.dirOf(rel), trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }

  /** Digests of every blob file on disk. */
  async listBlobFiles(): Promise<string[]> {
    const out: string[] = [];
    for (const [shard, name] of await shardedNames(this.ctx.blobs.dir)) {
      if (BLOB_NAME.test(name) && name.startsWith(shard)) out.push(name);
    }
    return out;
  }
}

/** The directory names below `p` (none when it cannot be read). */
export async function subdirs(p: string): Promise<string[]> {
  try {
    return (await fs.readdir(p, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** What the index keeps of an entry, from its meta and the blobs it references. */
export function toIndexEntry(meta: EntryMeta, blobs: string[]): NewEntry {
  return {
    key: meta.key,
    package: meta.package,
    version: meta.version,
    hash: meta.hash,
    platform: meta.platform,
    variant: meta.variant,
    createdAt: Date.parse(meta.createdAt),
    lastAccessAt: Date.parse(meta.lastAccessAt),
    sizeBytes: meta.sizeBytes,
    storedBytes: meta.storedBytes,
    files: meta.files,
    blobs,
  };
}

/** An entry's meta.json text. */
export function metaJson(v: EntryMeta): string {
  return `${JSON.stringify(v, null, 1)}\n`;
}
