/**
 * The local content-addressed store (layout in docs/ARCHITECTURE.md):
 *
 *   <root>/index.json                            key -> entry dir + summary (rebuildable)
 *   <root>/<package>/<version>/<hash>/meta.json  EntryMeta
 *   <root>/<package>/<version>/<hash>/artifact   the manifest (manifest.ts)
 *   <root>/blobs/<aa>/<sha256>                   zstd frames (blobs.ts)
 *   <root>/tmp/                                  every write goes through here, then rename
 *
 * meta.json and artifact are the truth; index.json is a lookup aid. An entry becomes visible
 * by one rename of its finished directory, and index changes, entry commits and blob deletion
 * happen under one lock, so a removal can never delete a blob that a commit is relying on.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import lockfile from 'proper-lockfile';
import { StoreError } from '../errors.js';
import { compareBytes } from '../util/bytes.js';
import { exists, tempName, writeFileAtomic } from '../util/fsx.js';
import { BlobStore } from './blobs.js';
import { loadCodec, type Codec } from './codec.js';
import { blobSizes, manifestFiles, parseManifest, type Manifest } from './manifest.js';
import {
  checkHash,
  checkKey,
  entryDirName,
  makeIndex,
  parseIndex,
  parseMeta,
  toRecord,
  type IndexFile,
  type IndexRecord,
} from './meta.js';
import { readPack, writePack } from './pack.js';
import { restoreRoots, type RootToRestore } from './restore.js';
import { snapshotRoots } from './snapshot.js';
import type {
  EntryMeta,
  OutputRoot,
  RestoreOptions,
  RestoreResult,
  SaveRequest,
  SaveResult,
} from './types.js';

const TMP_MAX_AGE_MS = 60 * 60 * 1000;
const META = 'meta.json';
const ARTIFACT = 'artifact';

export interface LocalStoreOptions {
  /** The codec for new blobs and for reading; defaults to the process-wide `loadCodec()`. */
  readonly codec?: Codec;
}

export class LocalStore {
  private readonly indexPath: string;
  private readonly tmpDir: string;
  private readonly blobs: BlobStore;

  private constructor(
    readonly root: string,
    readonly codec: Codec,
  ) {
    this.indexPath = path.join(root, 'index.json');
    this.tmpDir = path.join(root, 'tmp');
    this.blobs = new BlobStore(path.join(root, 'blobs'), this.tmpDir, codec);
  }

  /**
   * Opens (creating if needed) the store at `root`: makes the layout, removes leftovers in tmp/
   * older than an hour (younger ones may belong to a live writer), and rebuilds index.json when
   * it is missing or unreadable.
   */
  static async open(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = path.resolve(root);
    await fs.mkdir(path.join(abs, 'blobs'), { recursive: true });
    await fs.mkdir(path.join(abs, 'tmp'), { recursive: true });
    const store = new LocalStore(abs, options.codec ?? (await loadCodec()));
    await store.cleanTmp(Date.now() - TMP_MAX_AGE_MS);
    await store.readIndex();
    return store;
  }

  // ---- lookups -------------------------------------------------------------------------

  async get(key: string): Promise<EntryMeta | undefined> {
    const rec = (await this.readIndex()).entries.find((r) => r.key === key);
    if (rec === undefined) return undefined;
    return this.readMetaOf(rec.dir, key);
  }

  /** For each prefix in order: the newest entry (createdAt) whose key starts with it. */
  async findByPrefix(prefixes: readonly string[]): Promise<EntryMeta | undefined> {
    const { entries } = await this.readIndex();
    for (const prefix of prefixes) {
      const candidates = entries
        .filter((r) => r.key.startsWith(prefix))
        .sort(
          (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || compareBytes(b.key, a.key),
        );
      for (const c of candidates) {
        const meta = await this.readMetaOf(c.dir, c.key);
        if (meta !== undefined) return meta;
      }
    }
    return undefined;
  }

  /** Every readable entry, by key in byte order. */
  async list(): Promise<EntryMeta[]> {
    const out: EntryMeta[] = [];
    for (const r of (await this.readIndex()).entries) {
      const meta = await this.readMetaOf(r.dir, r.key);
      if (meta !== undefined) out.push(meta);
    }
    return out;
  }

  // ---- save and restore ----------------------------------------------------------------

  /** Stores the roots under `req.key`; an existing key is not rewritten (created=false). */
  async save(req: SaveRequest): Promise<SaveResult> {
    checkKey(req.key);
    checkHash(req.hash);
    const names = new Set<string>();
    for (const r of req.roots) {
      if (names.has(r.name)) throw new StoreError(`output ${r.name} is listed twice`);
      names.add(r.name);
    }
    const existing = await this.get(req.key);
    if (existing !== undefined)
      return { entry: existing, created: false, newBlobs: 0, newBytes: 0 };

    const snap = await snapshotRoots(req.roots, this.blobs);
    // What we save must pass what restore demands; this catches a walk that went wrong.
    const manifest = parseManifest({ schema: 1, roots: snap.roots });
    const now = new Date().toISOString();
    const meta: EntryMeta = {
      schema: 1,
      key: req.key,
      package: req.package,
      version: req.version,
      hash: req.hash,
      platform: req.platform,
      variant: req.variant,
      createdAt: now,
      lastAccessAt: now,
      ...totals(manifest),
      storedBytes: [...snap.stored.values()].reduce((a, b) => a + b, 0),
      ...(req.keyManifest !== undefined ? { keyManifest: req.keyManifest } : {}),
    };
    const { entry, created } = await this.commit(meta, manifest);
    return created
      ? { entry, created, newBlobs: snap.newBlobs, newBytes: snap.newBytes }
      : { entry, created, newBlobs: 0, newBytes: 0 };
  }

  /**
   * Restores the requested roots of `key`. Roots the entry lacks (or recorded as absent) are
   * left alone; roots the entry has but were not requested are not restored. Throws
   * StoreError/UnsafeEntryError with the workspace untouched on any failure. Does not update
   * lastAccessAt: call `touch`.
   */
  async restore(
    key: string,
    roots: readonly OutputRoot[],
    opts: RestoreOptions = {},
  ): Promise<RestoreResult> {
    const { manifest } = await this.load(key);
    const jobs: RootToRestore[] = [];
    for (const root of roots) {
      const m = manifest.roots.find((r) => r.name === root.name);
      if (m !== undefined && m.kind !== 'absent') jobs.push({ root, manifest: m });
    }
    return restoreRoots(this.blobs, jobs, opts);
  }

  // ---- packs ---------------------------------------------------------------------------

  async exportPack(key: string, destFile: string): Promise<{ bytes: number }> {
    const { meta, manifest } = await this.load(key);
    return { bytes: await writePack(this.blobs, meta, manifest, destFile) };
  }

  /**
   * Imports a pack, verifying every blob before the entry becomes visible. Returns the new
   * entry's meta, or the existing one when the key is already in the store.
   */
  async importPack(packFile: string): Promise<EntryMeta> {
    let packMeta: EntryMeta | undefined;
    let existing: EntryMeta | undefined;
    const read = await readPack(this.blobs, packFile, async (header) => {
      packMeta = parseMeta(header.meta);
      entryDirName(packMeta);
      existing = await this.get(packMeta.key);
      return existing === undefined;
    });
    if (existing !== undefined) return existing;
    if (read === undefined || packMeta === undefined) throw new StoreError('pack import stopped');
    const now = new Date().toISOString();
    // Sizes and counts are recomputed from the manifest, not taken from the pack's word.
    const meta: EntryMeta = {
      ...packMeta,
      lastAccessAt: now,
      ...totals(read.manifest),
      storedBytes: read.storedBytes,
    };
    return (await this.commit(meta, read.manifest)).entry;
  }

  // ---- maintenance ---------------------------------------------------------------------

  /** Removes the entry, then the blobs it referenced that no remaining entry references. */
  async remove(key: string): Promise<void> {
    await this.locked(async () => {
      const index = await this.readIndex(true);
      const rec = index.entries.find((r) => r.key === key);
      if (rec === undefined) return;
      const dir = this.dirOf(rec.dir);
      let digests: string[] = [];
      try {
        digests = [...blobSizes(await this.readManifest(dir)).keys()];
      } catch (err) {
        core.debug(`clyde-cache: ${key}: unreadable manifest, its blobs stay: ${err}`);
      }
      if (await exists(dir)) {
        const trash = tempName(this.tmpDir, 'removed');
        await fs.rename(dir, trash);
        await fs.rm(trash, { recursive: true, force: true });
      }
      await this.writeIndex(makeIndex(index.entries.filter((r) => r.key !== key)));

      const inUse = new Set<string>();
      for (const other of await this.scanEntryDirs()) {
        try {
          for (const f of manifestFiles(await this.readManifest(this.dirOf(other))))
            inUse.add(f.digest);
        } catch (err) {
          // An entry we cannot read might need any blob: delete nothing.
          core.debug(`clyde-cache: ${other}: unreadable manifest, keeping all blobs: ${err}`);
          return;
        }
      }
      for (const d of digests) if (!inUse.has(d)) await this.blobs.remove(d);
    });
  }

  /** Sets lastAccessAt to now. */
  async touch(key: string): Promise<void> {
    await this.locked(async () => {
      const index = await this.readIndex(true);
      const rec = index.entries.find((r) => r.key === key);
      if (rec === undefined) return;
      const meta = await this.readMetaOf(rec.dir, key);
      if (meta === undefined) return;
      const updated: EntryMeta = { ...meta, lastAccessAt: new Date().toISOString() };
      await writeFileAtomic(path.join(this.dirOf(rec.dir), META), json(updated), this.tmpDir);
      await this.writeIndex(
        makeIndex(index.entries.map((r) => (r.key === key ? toRecord(updated) : r))),
      );
    });
  }

  // ---- internals -----------------------------------------------------------------------

  private dirOf(rel: string): string {
    return path.join(this.root, ...rel.split('/'));
  }

  private async load(key: string): Promise<{ meta: EntryMeta; manifest: Manifest }> {
    const rec = (await this.readIndex()).entries.find((r) => r.key === key);
    const meta = rec && (await this.readMetaOf(rec.dir, key));
    if (rec === undefined || meta === undefined)
      throw new StoreError(`no entry ${key} in the store`);
    return { meta, manifest: await this.readManifest(this.dirOf(rec.dir)) };
  }

  private async readManifest(dir: string): Promise<Manifest> {
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(path.join(dir, ARTIFACT), 'utf8'));
    } catch (err) {
      throw new StoreError(`unreadable manifest in ${dir}: ${err}`);
    }
    return parseManifest(raw);
  }

  /** The meta of the entry in `rel`, if it is readable, valid and really holds `key`. */
  private async readMetaOf(rel: string, key: string): Promise<EntryMeta | undefined> {
    try {
      const meta = parseMeta(
        JSON.parse(await fs.readFile(path.join(this.dirOf(rel), META), 'utf8')),
      );
      return meta.key === key && entryDirName(meta) === rel ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes the entry directory in tmp/, then (locked) renames it into place and indexes it. */
  private async commit(
    meta: EntryMeta,
    manifest: Manifest,
  ): Promise<{ entry: EntryMeta; created: boolean }> {
    const rel = entryDirName(meta);
    const staging = tempName(this.tmpDir, 'entry');
    await fs.mkdir(staging, { recursive: true });
    try {
      await writeFileAtomic(path.join(staging, ARTIFACT), JSON.stringify(manifest), staging);
      await writeFileAtomic(path.join(staging, META), json(meta), staging);
      return await this.locked(async () => {
        const dest = this.dirOf(rel);
        if (await exists(dest)) {
          const there = await this.readMetaOf(rel, meta.key);
          if (there === undefined) {
            throw new StoreError(`entry directory ${rel} exists and does not hold ${meta.key}`);
          }
          return { entry: there, created: false };
        }
        // A blob may have been removed since it was found present: never index an entry
        // whose content is not all there.
        for (const digest of blobSizes(manifest).keys()) {
          if ((await this.blobs.storedSize(digest)) === undefined) {
            throw new StoreError(`blob ${digest} vanished while saving ${meta.key}`);
          }
        }
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await fs.rename(staging, dest);
        const index = await this.readIndex(true);
        await this.writeIndex(makeIndex([...index.entries, toRecord(meta)]));
        return { entry: meta, created: true };
      });
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * index.json, rebuilt from the meta.json files when missing or unreadable. `haveLock` says
   * the caller holds the store lock (the rebuild needs it).
   */
  private async readIndex(haveLock = false): Promise<IndexFile> {
    try {
      return parseIndex(await fs.readFile(this.indexPath, 'utf8'));
    } catch {
      const rebuild = async (): Promise<IndexFile> => {
        try {
          return parseIndex(await fs.readFile(this.indexPath, 'utf8'));
        } catch {
          const rebuilt = await this.rebuildIndex();
          await this.writeIndex(rebuilt);
          return rebuilt;
        }
      };
      return haveLock ? rebuild() : this.locked(rebuild);
    }
  }

  private async writeIndex(index: IndexFile): Promise<void> {
    await writeFileAtomic(this.indexPath, json(index), this.tmpDir);
  }

  /** `<package>/<version>/<hash>` of every directory that looks like an entry. */
  private async scanEntryDirs(): Promise<string[]> {
    const out: string[] = [];
    const dirs = async (p: string): Promise<string[]> => {
      try {
        return (await fs.readdir(p, { withFileTypes: true }))
          .filter((d) => d.isDirectory())
          .map((d) => d.name);
      } catch {
        return [];
      }
    };
    for (const pkg of await dirs(this.root)) {
      if (pkg === 'blobs' || pkg === 'tmp') continue;
      for (const ver of await dirs(path.join(this.root, pkg))) {
        for (const hash of await dirs(path.join(this.root, pkg, ver))) {
          out.push(`${pkg}/${ver}/${hash}`);
        }
      }
    }
    return out;
  }

  private async rebuildIndex(): Promise<IndexFile> {
    const records: IndexRecord[] = [];
    for (const rel of await this.scanEntryDirs()) {
      try {
        const meta = parseMeta(
          JSON.parse(await fs.readFile(path.join(this.dirOf(rel), META), 'utf8')),
        );
        if (entryDirName(meta) === rel) records.push(toRecord(meta));
      } catch {
        // not an entry (or a damaged one): leave it out
      }
    }
    return makeIndex(records);
  }

  private async cleanTmp(olderThanMs: number): Promise<void> {
    for (const name of await fs.readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, name);
      try {
        if ((await fs.lstat(p)).mtimeMs < olderThanMs)
          await fs.rm(p, { recursive: true, force: true });
      } catch {
        // gone already
      }
    }
  }

  /** Runs `fn` holding the store lock (a directory next to index.json; stale after 20 s). */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.indexPath, {
        realpath: false,
        stale: 20_000,
        retries: { retries: 100, factor: 1.3, minTimeout: 10, maxTimeout: 500 },
      });
    } catch (err) {
      throw new StoreError(`cannot lock the store at ${this.root}: ${err}`);
    }
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

function totals(m: Manifest): { sizeBytes: number; files: number; roots: string[] } {
  let sizeBytes = 0;
  let files = 0;
  for (const f of manifestFiles(m)) {
    sizeBytes += f.size;
    files++;
  }
  return { sizeBytes, files, roots: m.roots.filter((r) => r.kind !== 'absent').map((r) => r.name) };
}

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 1)}\n`;
}
