/**
 * The local content-addressed store: the public facade. Its rooms do the work:
 *
 *   index-keeper.ts   the index's lifecycle: load, journal, rebuild, mutate under the lock, persist
 *   save.ts           a new entry: save (walk, blobs, commit), and the commit of an adopted one
 *   pack-room.ts      downloaded packs (runner cache, bucket): restored from their frames, adopted
 *   maintenance.ts    removals, verify and repair, the sweeps (verdicts from src/prune/policy.ts)
 *   store-layout.ts   on open: the layout version, tmp/ leftovers
 *   entries.ts        the entry directories and blob files the rooms read and delete
 *   blob-layout.ts    where a blob lives, and the one write-or-adopt
 *
 * On disk (layout in docs/ARCHITECTURE.md):
 *
 *   <root>/index.bin                             entries, blob sizes and reference counts
 *                                                (index-file.ts; rebuildable from the entries)
 *   <root>/access.journal                        access times since index.bin was written
 *                                                (access-journal.ts)
 *   <root>/<package>/<version>/<hash>/meta.json  EntryMeta
 *   <root>/<package>/<version>/<hash>/artifact   the entry's table (table.ts)
 *   <root>/blobs/<aa>/<sha256>                   zstd frames (blob-layout.ts, blobs.ts)
 *   <root>/tmp/                                  every write goes through here, then rename
 *   <root>/store.lock                            the lock (lock.ts), held only for commits
 *   <root>/markers/<name>                         markers, e.g. the last prune (stats.ts)
 *   <root>/layout                                the layout version (store-layout.ts)
 *   <root>/old-layout/                           what a store of an older layout held: moved
 *                                                here on open, removed by `sweepOldLayout`
 *                                                (as is the unpacked/ of earlier versions)
 *
 * What a listed entry is: the index says so. meta.json and artifact are the entry's content;
 * the index is rebuilt from them when it is missing or fails its checks. Blob writes take no
 * lock (content addressing: one name, one content; rename is atomic). Commits and removals
 * take the lock, re-read the index if another process changed it, and write it back by temp
 * file + rename. Leftovers in tmp/ of dead processes go on the next open.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { compareBytes } from '../util/bytes.js';
import { BlobStore, type LentFrame } from './blobs.js';
import { EntryFiles, type StoreContext } from './entries.js';
import { indexToJson } from './index-file.js';
import { IndexKeeper } from './index-keeper.js';
import { DEFAULT_LOCK_STALE_MS, DEFAULT_LOCK_TIMEOUT_MS } from './lock.js';
import { MaintenanceRoom } from './maintenance.js';
import type { Manifest } from './manifest.js';
import { entryDirName } from './meta.js';
import {
  packStream,
  savedPackStream,
  writePack,
  type PackOptions,
  type PackStream,
} from './pack.js';
import {
  PackRoom,
  rootsToRestore,
  type PackFile,
  type PackRestore,
  type ScannedPacks,
} from './pack-room.js';
import type { Backend } from './pool.js';
import { restoreRoots } from './restore.js';
import { SaveRoom } from './save.js';
import { encodeTable } from './table.js';
import { checkLayout, cleanTmp } from './store-layout.js';
import { writeStatCache } from './statcache.js';
import { readMarker, writeMarker } from './stats.js';
import type {
  EntryMeta,
  OutputRoot,
  RemoveManyResult,
  RestoreOptions,
  RestoreResult,
  SaveRequest,
  SaveResult,
  SnapshotEntry,
  StoreFaults,
  StoreSnapshot,
  StoreStats,
  VerifyOptions,
  VerifyReport,
} from './types.js';

export interface LocalStoreOptions {
  /**
   * The zstd backend the store's workers must use (tests: each backend reads the other's
   * frames); none: zstd-napi where its binary loads, else node:zlib (pool.ts).
   */
  readonly backend?: Backend;
  /** How long to wait for the store lock before StoreError('lock timeout ...'). Default 30 s. */
  readonly lockTimeoutMs?: number;
  /** A lock not refreshed for this long belongs to a dead process and is taken over. Default
   *  15 s; proper-lockfile's minimum is 2 s. */
  readonly lockStaleMs?: number;
  /** Fault injection for tests (test-support/store/faults.ts); none in production. */
  readonly faults?: StoreFaults;
}

export class LocalStore {
  private readonly ctx: StoreContext;
  private readonly files: EntryFiles;
  private readonly keeper: IndexKeeper;
  private readonly saver: SaveRoom;
  private readonly upkeep: MaintenanceRoom;
  private readonly packs: PackRoom;

  private constructor(
    readonly root: string,
    options: LocalStoreOptions,
  ) {
    const tmpDir = path.join(root, 'tmp');
    const indexPath = path.join(root, 'index.bin');
    const faults = options.faults ?? {};
    this.ctx = {
      root,
      tmpDir,
      indexPath,
      blobs: new BlobStore(path.join(root, 'blobs'), tmpDir, faults.enospcAfter, options.backend),
      lock: {
        target: indexPath,
        lockPath: path.join(root, 'store.lock'),
        timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
        staleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
      },
      faults,
    };
    this.files = new EntryFiles(this.ctx);
    this.keeper = new IndexKeeper(this.ctx, this.files);
    this.saver = new SaveRoom(this.ctx, this.files, this.keeper, {
      get: (key) => this.get(key),
      load: (key) => this.load(key),
    });
    this.upkeep = new MaintenanceRoom(this.ctx, this.files, this.keeper);
    this.packs = new PackRoom(this.ctx, this.saver);
  }

  /**
   * Opens (creating if needed) the store at `root`: moves an older layout aside (`checkLayout`),
   * makes the layout, removes leftovers in tmp/ of processes that are gone, and loads the index,
   * rebuilding it (with a warning) when it is missing, truncated or fails its checks.
   */
  static async open(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = path.resolve(root);
    await fs.mkdir(path.join(abs, 'tmp'), { recursive: true });
    const store = new LocalStore(abs, options);
    await checkLayout(store.ctx);
    await fs.mkdir(path.join(abs, 'blobs'), { recursive: true });
    await cleanTmp(store.ctx.tmpDir);
    await store.keeper.index();
    return store;
  }

  /**
   * Starts the worker threads now, so that they load while the step does other work (a
   * download, reading a table) rather than when the first file is written or read.
   */
  startWorkers(): void {
    this.ctx.blobs.pool();
  }

  /**
   * The zstd backend the store's workers use, once they have started: 'zstd-napi', or
   * 'node:zlib' where its binary is missing or will not load. Rejects when they cannot start.
   */
  workerBackend(): Promise<string> {
    return this.ctx.blobs.pool().backend();
  }

  // ---- lookups -------------------------------------------------------------------------

  async get(key: string): Promise<EntryMeta | undefined> {
    const rec = (await this.keeper.index()).entries.get(key);
    if (rec === undefined) return undefined;
    return this.files.metaOf(rec);
  }

  /** For each prefix in order: the newest entry (createdAt) whose key starts with it. */
  async findByPrefix(prefixes: readonly string[]): Promise<EntryMeta | undefined> {
    const entries = [...(await this.keeper.index()).entries.values()];
    for (const prefix of prefixes) {
      const candidates = entries
        .filter((r) => r.key.startsWith(prefix))
        .sort((a, b) => b.createdAt - a.createdAt || compareBytes(b.key, a.key));
      for (const c of candidates) {
        const meta = await this.files.metaOf(c);
        if (meta !== undefined) return meta;
      }
    }
    return undefined;
  }

  /** Every readable entry, by key in byte order. */
  async list(): Promise<EntryMeta[]> {
    const out: EntryMeta[] = [];
    for (const r of (await this.keeper.index()).sortedEntries()) {
      const meta = await this.files.metaOf(r);
      if (meta !== undefined) out.push(meta);
    }
    return out;
  }

  /**
   * Every entry with its blobs, and every blob's size on disk, straight from the index (no
   * per-entry or per-blob file access): what the prune policy plans from.
   */
  async snapshot(): Promise<StoreSnapshot> {
    const ix = await this.keeper.index();
    const names = ix.blobs.names();
    const entries: SnapshotEntry[] = ix.sortedEntries().map((e) => ({
      key: e.key,
      package: e.package,
      version: e.version,
      platform: e.platform,
      variant: e.variant,
      sizeBytes: e.sizeBytes,
      createdAt: e.createdAt,
      lastAccessAt: e.lastAccessAt,
      blobs: Array.from(e.slots, (s) => names[s] as string),
    }));
    return { entries, blobSizes: ix.blobs.sizeView() };
  }

  /**
   * The stored bytes of the blobs entry `key` references, but those in `omit` (what a pack of
   * it would carry), from the index: no file is read.
   */
  async storedBytes(key: string, omit: ReadonlySet<string> = new Set()): Promise<number> {
    const ix = await this.keeper.index();
    const e = ix.entries.get(key);
    if (e === undefined) throw new StoreError(`no entry ${key} in the store`);
    let bytes = 0;
    for (const slot of e.slots) if (!omit.has(ix.blobs.name(slot))) bytes += ix.blobs.sizeOf(slot);
    return bytes;
  }

  /** The index as readable JSON (entries by key, blobs with size and reference count). */
  async exportIndexJson(): Promise<string> {
    return indexToJson(await this.keeper.index());
  }

  // ---- save and restore ----------------------------------------------------------------

  /** Stores the roots under `req.key`; an existing key is not rewritten (created=false). */
  save(req: SaveRequest): Promise<SaveResult> {
    return this.saver.save(req);
  }

  /**
   * Restores the requested roots of `key`. Roots the entry lacks (or recorded as absent) are
   * left alone; roots the entry has but were not requested are not restored. Throws
   * StoreError/UnsafeEntryError with the workspace untouched on any failure; a blob found
   * corrupt is deleted and every entry that needs it leaves the index. Does not update
   * lastAccessAt: call `touch`.
   */
  async restore(
    key: string,
    roots: readonly OutputRoot[],
    opts: RestoreOptions = {},
  ): Promise<RestoreResult> {
    // The workers start up (their own threads) while this one reads the manifest.
    this.ctx.blobs.pool();
    const { manifest } = await this.load(key);
    const jobs = rootsToRestore(manifest, roots);
    try {
      // [store-speed] grouped small files are found through the entry's table (read above); the
      // stat cache lets the next save of this package skip the files the build leaves alone.
      const { statCache, quiet, ...result } = await restoreRoots(this.ctx.blobs, jobs, opts);
      const table = encodeTable({ key, ...statCache.head }, statCache.roots);
      await Promise.all([
        writeStatCache(this.root, this.ctx.tmpDir, key, roots, table).catch(() => {}),
        quiet,
      ]);
      return result;
    } catch (err) {
      if (err instanceof Error && err.name === 'StoreError') await this.upkeep.dropBroken(manifest);
      throw err;
    }
  }

  // ---- packs ---------------------------------------------------------------------------

  /**
   * The pack of `key`, its size and its pieces (pack.ts `packStream`: when they throw, what was
   * read is no pack); `verify: false` trusts the blobs (a store made for one step); `omit`:
   * blobs left out (a layer's: its base carries them).
   */
  async packStream(key: string, opts: PackOptions = {}): Promise<PackStream> {
    const { meta, table, manifest } = await this.load(key);
    return packStream(this.ctx.blobs, meta, table, manifest, opts);
  }

  /**
   * The pack of the entry `saved` made (pack.ts `savedPackStream`): its table is not read back,
   * and its blobs are not verified (for a store made for one step); `omit` as `packStream`.
   */
  savedPackStream(saved: SaveResult, omit?: ReadonlySet<string>): Promise<PackStream> {
    if (saved.made === undefined)
      throw new StoreError(`${saved.entry.key} was not made by this save`);
    const { table, blobs } = saved.made;
    return savedPackStream(this.ctx.blobs, saved.entry, table, blobs, omit);
  }

  /** Writes the pack of `key` (as `packStream`) to `destFile`; returns its size. */
  async exportPack(
    key: string,
    destFile: string,
    opts: PackOptions = {},
  ): Promise<{ bytes: number }> {
    return writePack(await this.packStream(key, opts), destFile);
  }

  /** Restores an entry straight from its downloaded packs, storing nothing (pack-room.ts). */
  restorePack(
    packs: readonly PackFile[],
    roots: readonly OutputRoot[],
    optionsFor: (meta: EntryMeta) => Promise<RestoreOptions>,
  ): Promise<PackRestore> {
    return this.packs.restore(packs, roots, optionsFor);
  }

  /** Makes an entry restorePack restored an entry of this store (pack-room.ts `adopt`). */
  adoptPacks(
    packs: readonly PackFile[],
    roots: readonly OutputRoot[],
    rows: Buffer,
    opts: { scanned?: ScannedPacks | undefined; lend?: boolean } = {},
  ): Promise<{ entry: EntryMeta; frames: ReadonlyMap<string, LentFrame> }> {
    return this.packs.adopt(packs, roots, rows, opts);
  }

  /**
   * Reads these frames of downloaded packs in place as blobs of this store (BlobStore.lend):
   * the frames another process adopted with `lend` into this store, when it opens it again.
   */
  lend(frames: ReadonlyMap<string, LentFrame>): void {
    this.ctx.blobs.lend(frames);
  }

  /**
   * The file of a blob (one the bucket tier would rather copy into the pack it assembles than
   * download: restorePack verifies it all the same).
   */
  blobFile(name: string): string {
    if (!/^[0-9a-f]{64}$/.test(name)) throw new StoreError(`not a blob name: ${name}`);
    return this.ctx.blobs.pathOf(name);
  }

  // ---- maintenance ---------------------------------------------------------------------

  /** Removes the entry, then the blobs no remaining entry references. */
  async remove(key: string): Promise<void> {
    await this.upkeep.removeMany([key]);
  }

  /** Removes the entries (unknown keys are skipped) under one lock (maintenance.ts). */
  removeMany(keys: readonly string[]): Promise<RemoveManyResult> {
    return this.upkeep.removeMany(keys);
  }

  /**
   * Removes what a store of an older layout left in old-layout/, and the unpacked/ copies of
   * earlier versions' linked restores (a dry run only counts).
   */
  sweepOldLayout(dryRun = false): Promise<{ files: number; bytes: number }> {
    return this.upkeep.sweepOldLayout(dryRun);
  }

  /**
   * Checks the store (`deep`: every blob decoded) and, with `repair`, fixes what was found
   * (maintenance.ts `verify`).
   */
  verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    return this.upkeep.verify(opts);
  }

  /**
   * Sets lastAccessAt to now: one append to the access journal, no lock, no rewrite (the next
   * commit or removal carries it into index.bin). meta.json keeps the time of the save; `get`
   * and `list` report the index's.
   */
  touch(key: string): Promise<void> {
    return this.keeper.touch(key);
  }

  async stats(): Promise<StoreStats> {
    const ix = await this.keeper.index();
    let logicalBytes = 0;
    let referencedBytes = 0;
    let storedBytes = 0;
    for (const e of ix.entries.values()) {
      logicalBytes += e.sizeBytes;
      for (const s of e.slots) referencedBytes += ix.blobs.sizeOf(s);
    }
    for (let s = 0; s < ix.blobs.slotCount; s++) {
      if (ix.blobs.isLive(s)) storedBytes += ix.blobs.sizeOf(s);
    }
    return {
      entries: ix.entries.size,
      blobs: ix.blobs.size,
      logicalBytes,
      referencedBytes,
      storedBytes,
      dedupRatio: storedBytes > 0 ? referencedBytes / storedBytes : 1,
      spaceRatio: storedBytes > 0 ? logicalBytes / storedBytes : 1,
    };
  }

  /** The time stored under `name` (e.g. 'last-prune'), or undefined if never written. */
  readMarker(name: string): Promise<number | undefined> {
    return readMarker(path.join(this.root, 'markers'), name);
  }

  writeMarker(name: string, epochMs: number): Promise<void> {
    return writeMarker(path.join(this.root, 'markers'), this.ctx.tmpDir, name, epochMs);
  }

  /** The entry `key`: its meta, its table and the manifest it describes. */
  private async load(key: string): Promise<{ meta: EntryMeta; table: Buffer; manifest: Manifest }> {
    const rec = (await this.keeper.index()).entries.get(key);
    const meta = rec && (await this.files.readMetaOf(entryDirName(rec), key));
    if (rec === undefined || meta === undefined)
      throw new StoreError(`no entry ${key} in the store`);
    return { meta, ...(await this.files.readArtifact(entryDirName(rec))) };
  }
}
