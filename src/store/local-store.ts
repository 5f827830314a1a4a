/**
 * The local content-addressed store (layout in docs/ARCHITECTURE.md):
 *
 *   <root>/index.bin                             entries, blob sizes and reference counts
 *                                                (index-file.ts; rebuildable from the entries)
 *   <root>/access.journal                        access times since index.bin was written
 *                                                (access-journal.ts)
 *   <root>/<package>/<version>/<hash>/meta.json  EntryMeta
 *   <root>/<package>/<version>/<hash>/artifact   the entry's table (table.ts)
 *   <root>/blobs/<aa>/<sha256>                   zstd frames (blobs.ts)
 *   <root>/tmp/                                  every write goes through here, then rename
 *   <root>/store.lock                            the lock (lock.ts), held only for commits
 *   <root>/stats.json, <root>/markers/<name>     lookup counters and markers (stats.ts)
 *   <root>/layout                                the layout version (LAYOUT_VERSION)
 *   <root>/old-layout/                           what a store of an older layout held: moved
 *                                                here on open, removed by `sweepOldLayout`
 *
 * One entry encoding: an entry is its meta.json and its table, locally and in a pack alike. A
 * store of an older layout is not read: `open` moves its files to old-layout/ (one line in the
 * log), the store starts empty, and the next prune removes them.
 *
 * What a listed entry is: the index says so. meta.json and artifact are the entry's content;
 * the index is rebuilt from them when it is missing or fails its checks. Blob writes take no
 * lock (content addressing: one name, one content; rename is atomic). Commits and removals
 * take the lock, re-read the index if another process changed it, and write it back by temp
 * file + rename. A hit (`touch`) takes no lock and rewrites nothing: it appends to the
 * access journal, which every read of the index applies and the next commit or removal folds
 * in. A commit checks under the lock that every blob it references is on
 * disk (re-writing from the saved files any that a concurrent removal deleted), and a removal
 * deletes a blob only when its reference count reaches zero, so neither can strand the other.
 *
 * Crash ordering: a commit renames the entry into place and then indexes it; a removal
 * un-indexes the entry and then deletes its directory and freed blobs. A crash in between
 * leaves garbage (a stray directory, orphan blobs) that `verify({ repair })` collects, never a
 * listed entry that lacks something. Leftovers in tmp/ of dead processes go on the next open.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage, StoreError, UnsafeEntryError } from '../errors.js';
import { compareBytes, sha256 } from '../util/bytes.js';
import { exists, rename, tempName, writeFileAtomic } from '../util/fsx.js';
import { appendTouch, JOURNAL_NAME, JOURNAL_ROTATE_BYTES, JournalTail } from './access-journal.js';
import { BlobStore, type Location } from './blobs.js';
import { loadCodec, type Codec } from './codec.js';
import {
  compareHex,
  decodeIndex,
  dirOfEntry,
  encodeIndex,
  indexToJson,
  BLOB_NAME,
  StoreIndex,
  type IndexEntry,
  type NewEntry,
} from './index-file.js';
import { DEFAULT_LOCK_STALE_MS, DEFAULT_LOCK_TIMEOUT_MS, withLock } from './lock.js';
import { blobSizes, manifestFiles, type Manifest } from './manifest.js';
import { checkHash, checkKey, entryDirName, parseMeta } from './meta.js';
import { MAX_GROUP_BYTES, readPack, writePack } from './pack.js';
import { restoreRoots, type RootToRestore } from './restore.js';
import { loadBasis } from './basis.js';
import { snapshotRoots } from './snapshot.js';
import { linkStatCache, removeStatCaches, writeStatCache } from './statcache.js';
import { decodeTable, encodeTable, GroupList, manifestTable, tableManifest } from './table.js';
import { bumpCounter, readCounters, readMarker, writeMarker } from './stats.js';
import { injectBlobFaults, pausePoint } from './test-hooks.js';
import type {
  EntryMeta,
  OutputRoot,
  RemoveManyResult,
  RestoreOptions,
  RestoreResult,
  SaveRequest,
  SaveResult,
  SnapshotEntry,
  StoreSnapshot,
  StoreStats,
  VerifyOptions,
  VerifyReport,
} from './types.js';

/** Leftovers in tmp/ without a pid in their name are removed after this long. */
const TMP_MAX_AGE_MS = 60 * 60 * 1000;
/** Leftovers of a live pid are kept this long (the pid may have been reused meanwhile). */
const TMP_LIVE_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const ORPHAN_MIN_AGE_MS = 10 * 60 * 1000;
/**
 * The store's layout, written to `<root>/layout`. 2: artifacts are tables and nothing else (no
 * JSON artifacts, no locator files, packs carry the table); a store without the file, or with
 * an older number, is moved aside on open.
 */
export const LAYOUT_VERSION = 2;
const LAYOUT = 'layout';
/** Where the files of an older layout wait for the next prune (`sweepOldLayout`). */
export const OLD_LAYOUT = 'old-layout';
/** Top-level names an older layout may have used (besides its package directories). */
const OLD_LAYOUT_NAMES = new Set([
  'index.bin',
  'index.json',
  'access.journal',
  'stats.json',
  'blobs',
  'markers',
  'unpacked',
  'statcache',
]);
const META = 'meta.json';
const ARTIFACT = 'artifact';
const INDEX = 'index.bin';
/** tempName(): `<hint>-<pid>-<12 hex>`; the worker pool's blob writes: `blob-<pid>-<n>-<n>`. */
const TMP_PID = [/-(\d+)-[0-9a-f]{12}$/, /^blob-(\d+)-\d+-\d+$/];
/** Top-level directories that are not packages. */
const NOT_ENTRIES = new Set(['blobs', 'tmp', 'markers', 'unpacked', 'statcache', OLD_LAYOUT]);

export interface LocalStoreOptions {
  /** The codec for new blobs and for reading; defaults to the process-wide `loadCodec()`. */
  readonly codec?: Codec;
  /** How long to wait for the store lock before StoreError('lock timeout ...'). Default 30 s. */
  readonly lockTimeoutMs?: number;
  /** A lock not refreshed for this long belongs to a dead process and is taken over. Default
   *  15 s; proper-lockfile's minimum is 2 s. */
  readonly lockStaleMs?: number;
}

/** The stat fields that change whenever index.bin is replaced (rename gives a new inode). */
interface FileSig {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export class LocalStore {
  private readonly indexPath: string;
  private readonly tmpDir: string;
  private readonly blobs: BlobStore;
  private readonly lockTimeoutMs: number;
  private readonly lockStaleMs: number;
  /** The index as last read or written by this instance, and the file it came from. */
  private cached: { index: StoreIndex; sig: FileSig } | undefined;
  /** How much of the access journal the cached index has taken in. */
  private readonly journal: JournalTail;

  private constructor(
    readonly root: string,
    readonly codec: Codec,
    options: LocalStoreOptions,
  ) {
    this.indexPath = path.join(root, INDEX);
    this.journal = new JournalTail(path.join(root, JOURNAL_NAME));
    this.tmpDir = path.join(root, 'tmp');
    this.blobs = new BlobStore(path.join(root, 'blobs'), this.tmpDir, codec);
    injectBlobFaults(this.blobs);
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
  }

  /**
   * Opens (creating if needed) the store at `root`: moves an older layout aside (`checkLayout`),
   * makes the layout, removes leftovers in tmp/ of processes that are gone, and loads the index,
   * rebuilding it (with a warning) when it is missing, truncated or fails its checks.
   */
  static async open(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = path.resolve(root);
    await fs.mkdir(path.join(abs, 'tmp'), { recursive: true });
    const store = new LocalStore(abs, options.codec ?? (await loadCodec()), options);
    await store.checkLayout();
    await fs.mkdir(path.join(abs, 'blobs'), { recursive: true });
    await store.cleanTmp();
    await store.index();
    return store;
  }

  /**
   * Makes sure the store is of LAYOUT_VERSION. A store without a layout file (or with an older
   * number) that holds anything of a store is of an older layout: under the lock, its files move
   * to old-layout/ (one rename each), which is said once, as an info line; the store is then
   * empty, and `sweepOldLayout` (prune) removes them. A newer layout is a StoreError (a warning
   * and a miss): this version neither reads nor moves it.
   */
  private async checkLayout(): Promise<void> {
    const file = path.join(this.root, LAYOUT);
    const read = async (): Promise<number | undefined> => {
      const text = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) return undefined;
      return /^\d{1,9}\n?$/.test(text) ? Number(text) : 0;
    };
    if ((await read()) === LAYOUT_VERSION) return;
    await withLock(this.lockSettings(), async () => {
      const found = await read();
      if (found === LAYOUT_VERSION) return;
      if (found !== undefined && found > LAYOUT_VERSION) {
        throw new StoreError(
          `the local store ${this.root} has layout ${found}, written by a newer clyde-cache; this one reads layout ${LAYOUT_VERSION}`,
        );
      }
      const old = await this.oldLayoutNames();
      if (old.length > 0) {
        const aside = tempName(path.join(this.root, OLD_LAYOUT), `layout-${found ?? 1}`);
        await fs.mkdir(aside, { recursive: true });
        for (const name of old) await rename(path.join(this.root, name), path.join(aside, name));
        core.info(
          `clyde-cache: the local store ${this.root} was written by an earlier clyde-cache (layout ${found ?? 1}, this one writes ${LAYOUT_VERSION}); starting it empty, its old files are removed by the next prune`,
        );
      }
      await writeFileAtomic(file, `${LAYOUT_VERSION}\n`, this.tmpDir);
    });
  }

  /** The top-level names that belong to a store of an older layout (its own names, entries). */
  private async oldLayoutNames(): Promise<string[]> {
    const out: string[] = [];
    for (const d of await fs.readdir(this.root, { withFileTypes: true })) {
      if (OLD_LAYOUT_NAMES.has(d.name)) out.push(d.name);
      else if (d.isDirectory() && !NOT_ENTRIES.has(d.name) && !d.name.endsWith('.lock')) {
        if (await holdsEntry(path.join(this.root, d.name))) out.push(d.name);
      }
    }
    return out.sort(compareBytes);
  }

  /**
   * Removes what an older layout left in old-layout/ (`checkLayout`). Decides first: every
   * directory there is of a layout this version does not read, so all of it goes; each is moved
   * to tmp/ under the lock (so no open is moving files into it meanwhile), then deleted. A dry
   * run only counts. Returns the files and bytes removed (or that would be).
   */
  async sweepOldLayout(dryRun = false): Promise<{ files: number; bytes: number }> {
    const dir = path.join(this.root, OLD_LAYOUT);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    if (names.length === 0) return { files: 0, bytes: 0 };
    const total = { files: 0, bytes: 0 };
    for (const name of names) {
      const { files, bytes } = await treeSize(path.join(dir, name));
      total.files += files;
      total.bytes += bytes;
    }
    if (dryRun) return total;
    const trash: string[] = [];
    await withLock(this.lockSettings(), async () => {
      for (const name of names) {
        const to = tempName(this.tmpDir, 'old-layout');
        await rename(path.join(dir, name), to).then(
          () => trash.push(to),
          () => {}, // gone meanwhile (another prune)
        );
      }
      await fs.rmdir(dir).catch(() => {});
    });
    for (const t of trash) await fs.rm(t, { recursive: true, force: true });
    return total;
  }

  // ---- lookups -------------------------------------------------------------------------

  async get(key: string): Promise<EntryMeta | undefined> {
    const rec = (await this.index()).entries.get(key);
    if (rec === undefined) return undefined;
    return this.metaOf(rec);
  }

  /** For each prefix in order: the newest entry (createdAt) whose key starts with it. */
  async findByPrefix(prefixes: readonly string[]): Promise<EntryMeta | undefined> {
    const entries = [...(await this.index()).entries.values()];
    for (const prefix of prefixes) {
      const candidates = entries
        .filter((r) => r.key.startsWith(prefix))
        .sort((a, b) => b.createdAt - a.createdAt || compareBytes(b.key, a.key));
      for (const c of candidates) {
        const meta = await this.metaOf(c);
        if (meta !== undefined) return meta;
      }
    }
    return undefined;
  }

  /** Every readable entry, by key in byte order. */
  async list(): Promise<EntryMeta[]> {
    const out: EntryMeta[] = [];
    for (const r of (await this.index()).sortedEntries()) {
      const meta = await this.metaOf(r);
      if (meta !== undefined) out.push(meta);
    }
    return out;
  }

  /**
   * Every entry with its blobs, and every blob's size on disk, straight from the index (no
   * per-entry or per-blob file access): what the prune policy plans from.
   */
  async snapshot(): Promise<StoreSnapshot> {
    const ix = await this.index();
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

  /** The index as readable JSON (entries by key, blobs with size and reference count). */
  async exportIndexJson(): Promise<string> {
    return indexToJson(await this.index());
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
    try {
      return await this.saveOnce(req, true);
    } catch (err) {
      // A concurrent removal deleted content this save reused (a group of an older entry) and
      // the saved files cannot rebuild it: save again, from the files alone.
      if (!(err instanceof VanishedBlobError)) throw err;
      core.info(`clyde-cache: ${err.message}; saving again without reusing stored groups`);
      return await this.saveOnce(req, false);
    }
  }

  /** One attempt at `save`; `reuse`: skip unchanged files of the previous entry (its basis). */
  private async saveOnce(req: SaveRequest, reuse: boolean): Promise<SaveResult> {
    const existing = await this.get(req.key);
    if (existing !== undefined)
      return { entry: existing, created: false, newBlobs: 0, newBytes: 0 };
    // The index as this save found it: if it is still the same at commit, nothing was removed
    // meanwhile, and the blobs the walk found or wrote are all still there.
    const startSig = this.cached?.sig;

    // [store-speed] the previous entry of the package: unchanged files are not read again.
    const basis = !reuse
      ? undefined
      : await loadBasis(
          this.root,
          this.blobs,
          req,
          (k) => this.get(k),
          async () => [...(await this.index()).entries.values()],
          async (k) => (await this.load(k)).manifest,
        );
    const snap = await snapshotRoots(
      req.key,
      req.roots,
      this.blobs,
      basis,
      req.groupSmallFiles !== false,
      { workspace: req.workspace, keepOutsideLinks: req.keepOutsideLinks },
    );
    await pausePoint('after-blobs');
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
      sizeBytes: snap.sizeBytes,
      files: snap.files,
      roots: snap.roots,
      storedBytes: [...snap.stored.values()].reduce((a, b) => a + b, 0),
      ...(req.keyManifest !== undefined ? { keyManifest: req.keyManifest } : {}),
    };
    // (The manifest itself is only needed when the store changed meanwhile: read back then.)
    const manifest = (): Manifest => this.tableManifest(snap.table);
    const { entry, created } = await this.commit(
      meta,
      snap.table,
      manifest,
      async (digest) => this.rewriteFromRoots(digest, manifest(), req.roots),
      { sig: startSig, sizes: snap.stored },
    );
    const metaBytes = Buffer.byteLength(json(meta));
    req.onStats?.({ ...snap.stats, entryBytes: snap.table.length + metaBytes });
    // [store-speed] the entry's table is also the stat cache of the roots just saved: the next
    // save of the package skips the files that did not change.
    if (created) {
      const artifact = path.join(this.dirOf(entryDirName(meta)), ARTIFACT);
      await linkStatCache(this.root, this.tmpDir, req.key, req.roots, artifact, snap.table).catch(
        () => {},
      );
    }
    const warnings = snap.warnings;
    return created
      ? { entry, created, newBlobs: snap.newBlobs, newBytes: snap.newBytes, warnings }
      : { entry, created, newBlobs: 0, newBytes: 0, warnings };
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
    this.blobs.pool();
    const { manifest } = await this.load(key);
    const jobs: RootToRestore[] = [];
    for (const root of roots) {
      const m = manifest.roots.find((r) => r.name === root.name);
      if (m !== undefined && m.kind !== 'absent') jobs.push({ root, manifest: m });
    }
    try {
      // [store-speed] grouped small files are found through the entry's table (read above); the
      // stat cache lets the next save of this package skip the files the build leaves alone.
      const { statCache, quiet, ...result } = await restoreRoots(this.blobs, jobs, opts);
      const table = encodeTable({ key, ...statCache.head }, statCache.roots);
      await Promise.all([
        writeStatCache(this.root, this.tmpDir, key, roots, table).catch(() => {}),
        quiet,
      ]);
      return result;
    } catch (err) {
      if (err instanceof Error && err.name === 'StoreError') await this.dropBroken(manifest);
      throw err;
    }
  }

  // ---- packs ---------------------------------------------------------------------------

  async exportPack(key: string, destFile: string): Promise<{ bytes: number }> {
    const { meta, table, manifest } = await this.load(key);
    return { bytes: await writePack(this.blobs, meta, table, manifest, destFile) };
  }

  /**
   * Imports the pack of the entry `key` (what the caller asked the remote tier for), verifying
   * every blob before the entry becomes visible. Nothing of the pack reaches the store until its
   * header is proven to be that entry: its key is `key`, and its hash is the key's own (the
   * key's last part, or the sha256 of an explicit key), so a pack cannot take the directory of
   * another entry. Returns the new entry's meta, or the existing one when `key` is already in
   * the store.
   */
  async importPack(packFile: string, key: string): Promise<EntryMeta> {
    let packMeta: EntryMeta | undefined;
    let existing: EntryMeta | undefined;
    const read = await readPack(this.blobs, packFile, async (header) => {
      packMeta = parseMeta(header.meta);
      if (packMeta.key !== key) {
        throw new UnsafeEntryError(`the pack holds '${packMeta.key}', not '${key}'`);
      }
      if (!hashBelongsToKey(packMeta.hash, packMeta.key)) {
        throw new UnsafeEntryError(`the pack's hash ${packMeta.hash} is not that of its key`);
      }
      entryDirName(packMeta);
      existing = await this.get(packMeta.key);
      return existing === undefined;
    });
    if (existing !== undefined) return existing;
    if (read === undefined || packMeta === undefined) throw new StoreError('pack import stopped');
    const now = new Date();
    // Sizes and counts are recomputed from the manifest, not taken from the pack's word; a
    // creation time in the future (which would keep the entry the newest fallback) is now.
    const meta: EntryMeta = {
      ...packMeta,
      createdAt:
        Date.parse(packMeta.createdAt) > now.getTime() ? now.toISOString() : packMeta.createdAt,
      lastAccessAt: now.toISOString(),
      ...totals(read.manifest),
      storedBytes: read.storedBytes,
    };
    const groups = new GroupList();
    const rows = manifestTable(read.manifest.roots, (d) => read.locations.get(d), groups);
    const table = encodeTable({ groups: groups.list }, rows);
    this.blobs.attach(read.manifest, read.locations);
    return (await this.commit(meta, table, () => read.manifest)).entry;
  }

  // ---- maintenance ---------------------------------------------------------------------

  /** Removes the entry, then the blobs no remaining entry references. */
  async remove(key: string): Promise<void> {
    await this.removeMany([key]);
  }

  /**
   * Removes the entries (unknown keys are skipped) under one lock: the index first, then
   * their directories and the blobs whose reference count fell to zero.
   */
  async removeMany(keys: readonly string[]): Promise<RemoveManyResult> {
    return this.mutate(async (ix) => {
      const removed: string[] = [];
      const dirs: string[] = [];
      const freed = new Map<string, number>();
      for (const key of new Set(keys)) {
        const gone = ix.delete(key);
        if (gone === undefined) continue;
        removed.push(key);
        dirs.push(dirOfEntry(gone.entry));
        for (const [d, size] of gone.freed) freed.set(d, size);
      }
      if (removed.length === 0) return { removed, freedBytes: 0 };
      await this.persist(ix);
      await pausePoint('after-remove-index');
      for (const rel of dirs) await this.deleteEntryDir(rel);
      for (const key of removed) await removeStatCaches(this.root, key);
      let freedBytes = 0;
      for (const [d, size] of freed) {
        await this.deleteBlob(d);
        freedBytes += size;
      }
      return { removed, freedBytes };
    });
  }

  /**
   * The `metadata` TTL class: removes the uncompressed copies under unpacked/ (made for hard-link
   * and clone restores) that no restore has linked or made for longer than `maxAgeMs` (the
   * copy's inode change time, which each new link moves). A copy still linked into a workspace
   * loses only this name (the workspace file stays), and the next such restore unpacks it
   * again. `bytes` counts only copies whose space is freed (no other link). A dry run counts.
   */
  async sweepUnpacked(
    maxAgeMs: number,
    now: number = Date.now(),
    dryRun = false,
  ): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const [shard, name] of await shardedNames(this.blobs.unpackedDir)) {
      const p = path.join(this.blobs.unpackedDir, shard, name);
      try {
        const st = await fs.lstat(p);
        if (!st.isFile() || now - st.ctimeMs <= maxAgeMs) continue;
        if (!dryRun) await fs.rm(p, { force: true });
        files++;
        if (st.nlink === 1) bytes += st.size;
      } catch {
        // gone meanwhile
      }
    }
    return { files, bytes };
  }

  /**
   * Sets lastAccessAt to now: one append to the access journal, no lock, no rewrite (the next
   * commit or removal carries it into index.bin). meta.json keeps the time of the save; `get`
   * and `list` report the index's.
   */
  async touch(key: string): Promise<void> {
    const rec = (await this.index()).entries.get(key);
    if (rec === undefined) return;
    const now = Date.now();
    await appendTouch(this.journal.file, key, now);
    if (now > rec.lastAccessAt) rec.lastAccessAt = now;
  }

  /** Counts a lookup for `stats()` (best-effort: never throws, never waits long). */
  async recordLookup(hit: boolean): Promise<void> {
    await bumpCounter(path.join(this.root, 'stats.json'), this.tmpDir, hit);
  }

  async stats(): Promise<StoreStats> {
    const ix = await this.index();
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
    const { hits, misses } = await readCounters(path.join(this.root, 'stats.json'));
    return {
      entries: ix.entries.size,
      blobs: ix.blobs.size,
      logicalBytes,
      referencedBytes,
      storedBytes,
      dedupRatio: storedBytes > 0 ? referencedBytes / storedBytes : 1,
      spaceRatio: storedBytes > 0 ? logicalBytes / storedBytes : 1,
      hits,
      misses,
      hitRate: hits + misses > 0 ? hits / (hits + misses) : 0,
    };
  }

  /** The time stored under `name` (e.g. 'last-prune'), or undefined if never written. */
  readMarker(name: string): Promise<number | undefined> {
    return readMarker(path.join(this.root, 'markers'), name);
  }

  writeMarker(name: string, epochMs: number): Promise<void> {
    return writeMarker(path.join(this.root, 'markers'), this.tmpDir, name, epochMs);
  }

  /**
   * Checks that every listed entry's meta.json and artifact parse, validate and agree with the
   * index, that every referenced blob exists (`deep`: and decodes to its digest), and that the
   * reference counts are right; lists orphan blobs and stray entry directories. `repair`
   * then fixes what was found, under the lock.
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    const ix = await this.index();
    const problems: string[] = [];
    const badEntries: string[] = [];
    const missing = new Set<string>();
    const corrupt = new Set<string>();
    const counted = new Map<string, number>();
    const contentSize = new Map<string, number>();
    for (const e of ix.sortedEntries()) {
      const rel = dirOfEntry(e);
      const meta = await this.readMetaOf(rel, e.key);
      let manifest: Manifest | undefined;
      try {
        manifest = await this.readManifest(this.dirOf(rel));
      } catch (err) {
        problems.push(`entry ${e.key}: ${err instanceof Error ? err.message : err}`);
      }
      if (meta === undefined) problems.push(`entry ${e.key}: meta.json unreadable or not its own`);
      if (manifest !== undefined) {
        try {
          // content size of each blob file: a standalone file's own, a group's whole
          const locs = this.blobs.locationsOf(manifest);
          for (const [d, size] of blobSizes(manifest)) {
            const loc = locs.get(d);
            if (loc === undefined) contentSize.set(d, size);
            else contentSize.set(loc.group, loc.groupSize);
          }
          const names = [...(await this.blobs.referencedBlobs(manifest)).keys()];
          const listed = new Set(ix.blobNames(e));
          if (names.length !== listed.size || names.some((d) => !listed.has(d))) {
            problems.push(`entry ${e.key}: the index lists other blobs than its artifact`);
            manifest = undefined;
          }
        } catch (err) {
          problems.push(`entry ${e.key}: ${err instanceof Error ? err.message : err}`);
          manifest = undefined;
        }
      }
      if (meta === undefined || manifest === undefined) badEntries.push(e.key);
      for (const d of ix.blobNames(e)) counted.set(d, (counted.get(d) ?? 0) + 1);
    }
    for (const d of counted.keys()) {
      if ((await this.blobSize(d)) === undefined) {
        missing.add(d);
        problems.push(`blob ${d} is missing`);
      } else if (opts.deep && contentSize.has(d)) {
        // (A blob that only unreadable entries reference has no size to check it against: those
        // entries are reported, not it.)
        try {
          await this.blobs.verifyStored(d, { size: contentSize.get(d) as number, members: [] });
        } catch (err) {
          corrupt.add(d);
          problems.push(`blob ${d} is corrupt: ${err instanceof Error ? err.message : err}`);
        }
      }
    }
    const mismatches: string[] = [];
    for (const [d, info] of ix.blobs) {
      if (info.refs !== (counted.get(d) ?? 0)) mismatches.push(d);
    }
    for (const d of counted.keys()) if (!ix.blobs.has(d)) mismatches.push(d);
    for (const d of mismatches) problems.push(`blob ${d}: reference count is wrong`);

    const onDisk = await this.listBlobFiles();
    const orphans = onDisk.filter((d) => !counted.has(d)).sort(compareHex);
    const listedDirs = new Set([...ix.entries.values()].map(dirOfEntry));
    const strays = (await this.scanEntryDirs()).filter((rel) => !listedDirs.has(rel));

    const report: VerifyReport = {
      ok: problems.length === 0,
      entries: ix.entries.size,
      blobs: ix.blobs.size,
      problems,
      badEntries,
      missingBlobs: [...missing].sort(compareHex),
      corruptBlobs: [...corrupt].sort(compareHex),
      refcountMismatches: mismatches.sort(compareHex),
      orphanBlobs: orphans,
      strayDirs: strays,
      repaired: false,
    };
    if (!opts.repair) return report;
    await this.repair(report, opts.orphanMinAgeMs ?? ORPHAN_MIN_AGE_MS);
    return { ...report, repaired: true };
  }

  // ---- internals -----------------------------------------------------------------------

  private dirOf(rel: string): string {
    return path.join(this.root, ...rel.split('/'));
  }

  private async load(key: string): Promise<{ meta: EntryMeta; table: Buffer; manifest: Manifest }> {
    const rec = (await this.index()).entries.get(key);
    const meta = rec && (await this.readMetaOf(dirOfEntry(rec), key));
    if (rec === undefined || meta === undefined)
      throw new StoreError(`no entry ${key} in the store`);
    return { meta, ...(await this.readArtifact(this.dirOf(dirOfEntry(rec)))) };
  }

  /**
   * The artifact of the entry in `dir` (its table: table.ts) and the manifest it describes; the
   * blob store learns where its grouped files live.
   */
  private async readArtifact(dir: string): Promise<{ table: Buffer; manifest: Manifest }> {
    try {
      const table = await fs.readFile(path.join(dir, ARTIFACT));
      return { table, manifest: this.tableManifest(table) };
    } catch (err) {
      if (err instanceof Error && err.name === 'UnsafeEntryError') throw err;
      throw new StoreError(`unreadable manifest in ${dir}: ${errorMessage(err)}`);
    }
  }

  private async readManifest(dir: string): Promise<Manifest> {
    return (await this.readArtifact(dir)).manifest;
  }

  /** The manifest of an artifact table; the blob store learns where its grouped files live. */
  private tableManifest(body: Buffer): Manifest {
    const { manifest, locations } = tableManifest(decodeTable(body));
    this.blobs.attach(manifest, locations);
    return manifest;
  }

  /** The entry's meta.json, with the index's lastAccessAt where a later touch moved it. */
  private async metaOf(rec: IndexEntry): Promise<EntryMeta | undefined> {
    const meta = await this.readMetaOf(dirOfEntry(rec), rec.key);
    if (meta === undefined || !(rec.lastAccessAt > Date.parse(meta.lastAccessAt))) return meta;
    return { ...meta, lastAccessAt: new Date(rec.lastAccessAt).toISOString() };
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

  /**
   * Writes the entry directory in tmp/, then (locked) checks its blobs, renames it into place
   * and indexes it. `rewrite` puts back a blob that a concurrent removal deleted (true when
   * it could).
   */
  private async commit(
    meta: EntryMeta,
    artifact: Buffer,
    manifest: () => Manifest,
    rewrite?: (digest: string) => Promise<boolean>,
    saved?: { sig: FileSig | undefined; sizes: Map<string, number> },
  ): Promise<{ entry: EntryMeta; created: boolean }> {
    const rel = entryDirName(meta);
    const staging = tempName(this.tmpDir, 'entry');
    try {
      // (The staging directory is this commit's own, and is renamed whole: its files need no
      // temporary names of their own.)
      await fs.mkdir(staging, { recursive: true });
      await Promise.all([
        fs.writeFile(path.join(staging, ARTIFACT), artifact),
        fs.writeFile(path.join(staging, META), json(meta)),
      ]);
      await pausePoint('after-artifact-tmp');
      return await this.mutate(async (ix) => {
        const listed = ix.entries.get(meta.key);
        if (listed !== undefined) {
          const there = await this.metaOf(listed);
          if (there !== undefined) return { entry: there, created: false };
          throw new StoreError(`entry ${meta.key} is listed but unreadable (verify can repair it)`);
        }
        // Never index an entry whose content is not all there: a removal may have deleted a
        // blob since the save found it present. When the index is the very one the save began
        // with (no commit or removal since), the sizes the save saw still hold.
        const unchanged = saved?.sig !== undefined && this.cached?.sig === saved.sig;
        const stored = new Map<string, number>();
        const refs = unchanged ? saved.sizes : await this.blobs.referencedBlobs(manifest());
        for (const [name, found] of refs) {
          let size = found ?? (await this.blobSize(name));
          if (size === undefined && rewrite !== undefined && (await rewrite(name))) {
            size = await this.blobSize(name);
          }
          if (size === undefined) {
            throw new VanishedBlobError(`blob ${name} vanished while saving ${meta.key}`);
          }
          stored.set(name, size);
        }
        await pausePoint('before-rename');
        const dest = this.dirOf(rel);
        // A directory the index does not list is a stray of a killed save: replace it. One the
        // index gives to another entry (two keys, one package/version/hash) is never touched.
        if (await exists(dest)) {
          const owner = [...ix.entries.values()].find((e) => dirOfEntry(e) === rel);
          if (owner !== undefined) {
            throw new StoreError(
              `entry ${meta.key} would take the directory of entry ${owner.key} (${rel})`,
            );
          }
          await this.deleteEntryDir(rel);
        }
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await rename(staging, dest);
        await pausePoint('before-index');
        ix.add(toIndexEntry(meta, [...stored.keys()]), stored);
        await this.persist(ix);
        return { entry: meta, created: true };
      });
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Re-stores a blob from the saved files that hold its content, unchanged since the walk: a
   * standalone file's blob from one file with its digest; a group blob from its members, when
   * this entry's files cover the whole group (a group reused from an older entry may hold files
   * this one lacks: then false, and the save is made again without reuse).
   */
  private async rewriteFromRoots(
    digest: string,
    manifest: Manifest,
    roots: readonly OutputRoot[],
  ): Promise<boolean> {
    const paths = new Map<string, string[]>();
    for (const m of manifest.roots) {
      const root = roots.find((r) => r.name === m.name);
      if (root === undefined) continue;
      for (const f of m.kind === 'file' && m.file ? [m.file] : m.entries) {
        if (f.type !== 'file' || f.digest === undefined) continue;
        const abs = f.path === '' ? root.absPath : path.join(root.absPath, ...f.path.split('/'));
        paths.set(f.digest, [...(paths.get(f.digest) ?? []), abs]);
      }
    }
    /** The content of `d` from the first of its files that still holds it. */
    const contentOf = async (d: string): Promise<Buffer | undefined> => {
      for (const abs of paths.get(d) ?? []) {
        const content = await fs.readFile(abs).catch(() => undefined);
        if (content !== undefined && sha256(content) === d) return content;
      }
      return undefined;
    };
    const members = [...this.blobs.locationsOf(manifest)].filter(([, loc]) => loc.group === digest);
    let content: Buffer | undefined;
    if (members.length === 0) {
      content = await contentOf(digest);
    } else {
      const groupSize = (members[0] as [string, Location])[1].groupSize;
      const covered = members.reduce((n, [, loc]) => n + loc.size, 0);
      if (covered !== groupSize || groupSize > MAX_GROUP_BYTES) return false;
      content = Buffer.alloc(groupSize);
      for (const [d, loc] of members) {
        const part = await contentOf(d);
        if (part === undefined || part.length !== loc.size) return false;
        part.copy(content, loc.offset);
      }
      if (sha256(content) !== digest) return false;
    }
    if (content === undefined) return false;
    await this.blobs.put(digest, content);
    return true;
  }

  /**
   * After a failed restore: if some of the entry's blobs are gone (a corrupt one is deleted
   * when read), every entry needing them leaves the index, so it becomes a plain miss.
   */
  private async dropBroken(manifest: Manifest): Promise<void> {
    const gone: string[] = [];
    let names: string[];
    try {
      names = [...(await this.blobs.referencedBlobs(manifest)).keys()];
    } catch {
      return; // the blobs cannot be listed: restore reported it; verify finds the entry
    }
    for (const d of names) if ((await this.blobSize(d)) === undefined) gone.push(d);
    if (gone.length === 0) return;
    try {
      await this.mutate(async (ix) => {
        const still = new Set<string>();
        for (const d of gone) if ((await this.blobSize(d)) === undefined) still.add(d);
        const broken = [...ix.entries.values()].filter((e) =>
          ix.blobNames(e).some((d) => still.has(d)),
        );
        if (broken.length === 0) return;
        core.warning(
          `clyde-cache: ${still.size} blob(s) of the local store are missing or were corrupt; dropping ${broken.length} entr${broken.length === 1 ? 'y' : 'ies'} that need them`,
        );
        const freed = new Map<string, number>();
        for (const e of broken) for (const [d, s] of ix.delete(e.key)?.freed ?? []) freed.set(d, s);
        await this.persist(ix);
        for (const e of broken) await this.deleteEntryDir(dirOfEntry(e));
        for (const d of freed.keys()) await this.deleteBlob(d);
      });
    } catch (err) {
      core.debug(`clyde-cache: could not drop broken entries: ${err}`);
    }
  }

  private async repair(report: VerifyReport, orphanMinAgeMs: number): Promise<void> {
    await this.mutate(async (ix) => {
      const bad = new Set([...report.badEntries]);
      const gone = new Set([...report.missingBlobs, ...report.corruptBlobs]);
      for (const d of report.corruptBlobs) await this.deleteBlob(d);
      // Rebuild the counts from the entries that stay; sizes from the files.
      const fresh = new StoreIndex();
      fresh.generation = ix.generation;
      for (const e of ix.sortedEntries()) {
        const names = ix.blobNames(e);
        if (bad.has(e.key) || names.some((d) => gone.has(d))) continue;
        const sizes = new Map<string, number>();
        let complete = true;
        for (const d of names) {
          const size = fresh.blobs.get(d)?.size ?? (await this.blobSize(d));
          if (size === undefined) complete = false;
          else sizes.set(d, size);
        }
        if (complete) fresh.add({ ...fieldsOf(e), blobs: names }, sizes);
      }
      await this.persist(fresh);
      const keep = new Set([...fresh.entries.values()].map(dirOfEntry));
      for (const e of ix.entries.values()) {
        if (!fresh.entries.has(e.key)) await this.deleteEntryDir(dirOfEntry(e));
      }
      for (const rel of await this.scanEntryDirs()) {
        if (!keep.has(rel)) await this.deleteEntryDir(rel);
      }
      const cutoff = Date.now() - orphanMinAgeMs;
      for (const d of await this.listBlobFiles()) {
        if (fresh.blobs.has(d)) continue;
        try {
          if ((await fs.lstat(this.blobFile(d))).mtimeMs <= cutoff) await this.deleteBlob(d);
        } catch {
          // gone already
        }
      }
    });
  }

  /**
   * The file of a blob (named in the index, or one the bucket tier would rather copy than
   * download: importPack verifies it all the same).
   */
  blobFile(name: string): string {
    if (!BLOB_NAME.test(name)) throw new StoreError(`not a blob name: ${name}`);
    return path.join(this.blobs.dir, name.slice(0, 2), name);
  }

  private async blobSize(name: string): Promise<number | undefined> {
    try {
      const st = await fs.stat(this.blobFile(name));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  private async deleteBlob(name: string): Promise<void> {
    await fs.rm(this.blobFile(name), { force: true });
  }

  /** Moves an entry directory to tmp/ (one rename, so it vanishes at once), then deletes it. */
  private async deleteEntryDir(rel: string): Promise<void> {
    const dir = this.dirOf(rel);
    const trash = tempName(this.tmpDir, 'removed');
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }

  // ---- the index -----------------------------------------------------------------------

  /**
   * The index, re-read when index.bin was replaced since this instance last saw it (another
   * process committed), rebuilt under the lock when it is missing or fails its checks.
   */
  private async index(): Promise<StoreIndex> {
    const loaded = await this.tryLoad();
    if (loaded !== undefined) return loaded;
    return withLock(this.lockSettings(), async () => {
      return (await this.tryLoad()) ?? (await this.rebuild());
    });
  }

  /** The cached or freshly read index; undefined when the file is missing or bad. */
  private async tryLoad(): Promise<StoreIndex | undefined> {
    let sig: FileSig;
    try {
      const st = await fs.stat(this.indexPath);
      sig = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return undefined;
    }
    const c = this.cached;
    let index: StoreIndex;
    if (c && c.sig.ino === sig.ino && c.sig.size === sig.size && c.sig.mtimeMs === sig.mtimeMs) {
      index = c.index;
    } else {
      try {
        index = decodeIndex(await fs.readFile(this.indexPath));
      } catch (err) {
        this.problem = err instanceof Error ? err.message : String(err);
        return undefined;
      }
      this.cached = { index, sig };
      this.journal.reset();
    }
    await this.applyJournal(index);
    return index;
  }

  /** Applies the touches appended to the access journal since this instance last read it. */
  private async applyJournal(ix: StoreIndex): Promise<void> {
    let touches: Map<string, number>;
    try {
      touches = await this.journal.read();
    } catch (err) {
      core.debug(`clyde-cache: access journal unreadable: ${err}`);
      return;
    }
    for (const [key, at] of touches) {
      const e = ix.entries.get(key);
      if (e !== undefined && at > e.lastAccessAt) e.lastAccessAt = at;
    }
  }

  /** Why the index file was last refused (for the rebuild warning). */
  private problem: string | undefined;

  /** Rebuilds index.bin from the entry directories; the caller holds the lock. */
  private async rebuild(): Promise<StoreIndex> {
    const ix = new StoreIndex();
    const dirs = await this.scanEntryDirs();
    const sizeOf = new Map<string, number | undefined>();
    for (const rel of dirs) {
      try {
        const meta = parseMeta(
          JSON.parse(await fs.readFile(path.join(this.dirOf(rel), META), 'utf8')),
        );
        if (entryDirName(meta) !== rel || ix.entries.has(meta.key)) continue;
        const refs = await this.blobs.referencedBlobs(await this.readManifest(this.dirOf(rel)));
        const digests = [...refs.keys()];
        const sizes = new Map<string, number>();
        for (const [d, size] of refs) {
          if (!sizeOf.has(d)) sizeOf.set(d, size);
          if (size !== undefined) sizes.set(d, size);
        }
        // An entry missing a blob cannot be restored: it stays out (verify repair deletes it).
        if (sizes.size === digests.length) ix.add(toIndexEntry(meta, digests), sizes);
      } catch {
        // not an entry (or a damaged one): leave it out
      }
    }
    const hadIndex = this.problem !== undefined;
    if (hadIndex || dirs.length > 0) {
      core.warning(
        `clyde-cache: the local store index ${this.indexPath} was ${hadIndex ? `unusable (${this.problem})` : 'missing'}; rebuilt it from ${ix.entries.size} entr${ix.entries.size === 1 ? 'y' : 'ies'}`,
      );
    }
    this.problem = undefined;
    // Access times since the entries were saved: whatever the journal still holds.
    this.journal.reset();
    await this.persist(ix);
    return ix;
  }

  /**
   * Runs `fn` under the lock on the current index. `fn` calls `persist` to write its changes;
   * if it throws, the cached index (possibly half-changed) is dropped and re-read next time.
   */
  private async mutate<T>(fn: (ix: StoreIndex) => Promise<T>): Promise<T> {
    return withLock(this.lockSettings(), async () => {
      const ix = (await this.tryLoad()) ?? (await this.rebuild());
      try {
        return await fn(ix);
      } catch (err) {
        this.cached = undefined;
        throw err;
      }
    });
  }

  /**
   * Writes `ix` (with the journal's latest touches folded in) as index.bin; the caller holds the
   * lock. Removes the journal when it has grown large and nothing was appended since it was read.
   */
  private async persist(ix: StoreIndex): Promise<void> {
    ix.generation++;
    await this.applyJournal(ix);
    await writeFileAtomic(this.indexPath, encodeIndex(ix), this.tmpDir);
    const st = await fs.stat(this.indexPath);
    this.cached = { index: ix, sig: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } };
    if (this.journal.consumed >= JOURNAL_ROTATE_BYTES && (await this.journal.unchanged())) {
      await fs.rm(this.journal.file, { force: true });
      this.journal.reset();
    }
  }

  private lockSettings(): { target: string; lockPath: string; timeoutMs: number; staleMs: number } {
    return {
      target: this.indexPath,
      lockPath: path.join(this.root, 'store.lock'),
      timeoutMs: this.lockTimeoutMs,
      staleMs: this.lockStaleMs,
    };
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
      if (NOT_ENTRIES.has(pkg) || pkg.endsWith('.lock')) continue;
      for (const ver of await dirs(path.join(this.root, pkg))) {
        for (const hash of await dirs(path.join(this.root, pkg, ver))) {
          out.push(`${pkg}/${ver}/${hash}`);
        }
      }
    }
    return out.sort(compareBytes);
  }

  /** Digests of every blob file on disk. */
  private async listBlobFiles(): Promise<string[]> {
    const out: string[] = [];
    for (const [shard, name] of await shardedNames(path.join(this.root, 'blobs'))) {
      if (BLOB_NAME.test(name) && name.startsWith(shard)) out.push(name);
    }
    return out;
  }

  /**
   * Removes what dead processes left in tmp/: names carrying a pid (tempName) go when that
   * process is gone; others, and those of a pid that may since have been reused, by age.
   */
  private async cleanTmp(): Promise<void> {
    const now = Date.now();
    for (const name of await fs.readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, name);
      try {
        const pid = TMP_PID.map((re) => re.exec(name)?.[1]).find((m) => m !== undefined);
        const age = now - (await fs.lstat(p)).mtimeMs;
        const stale =
          pid === undefined
            ? age > TMP_MAX_AGE_MS
            : !isAlive(Number(pid)) || age > TMP_LIVE_MAX_AGE_MS;
        if (stale) await fs.rm(p, { recursive: true, force: true });
      } catch {
        // gone already
      }
    }
  }
}

/** Whether `dir` (a top-level directory) holds an entry: `<version>/<hash>/meta.json`. */
async function holdsEntry(dir: string): Promise<boolean> {
  const subdirs = async (p: string): Promise<string[]> =>
    (await fs.readdir(p, { withFileTypes: true }).catch(() => []))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  for (const ver of await subdirs(dir)) {
    for (const hash of await subdirs(path.join(dir, ver))) {
      if (await exists(path.join(dir, ver, hash, META))) return true;
    }
  }
  return false;
}

/** The files (not directories) below `p` and their bytes; symlinks are not followed. */
async function treeSize(p: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (q: string): Promise<void> => {
    const st = await fs.lstat(q).catch(() => undefined);
    if (st === undefined) return;
    if (!st.isDirectory()) {
      files++;
      bytes += st.size;
      return;
    }
    for (const name of await fs.readdir(q).catch(() => [] as string[])) {
      await walk(path.join(q, name));
    }
  };
  await walk(p);
  return { files, bytes };
}

/** [shard, name] of every name one level below the shards of `dir` (none when it is missing). */
async function shardedNames(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  let shards: string[];
  try {
    shards = await fs.readdir(dir);
  } catch {
    return out;
  }
  for (const shard of shards) {
    try {
      for (const name of await fs.readdir(path.join(dir, shard))) out.push([shard, name]);
    } catch {
      // not a directory, or gone meanwhile
    }
  }
  return out;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function toIndexEntry(meta: EntryMeta, blobs: string[]): NewEntry {
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

/** An index entry's fields, without its blob slots (to add it to another index). */
function fieldsOf(e: IndexEntry): Omit<NewEntry, 'blobs'> {
  return {
    key: e.key,
    package: e.package,
    version: e.version,
    hash: e.hash,
    platform: e.platform,
    variant: e.variant,
    createdAt: e.createdAt,
    lastAccessAt: e.lastAccessAt,
    sizeBytes: e.sizeBytes,
    storedBytes: e.storedBytes,
    files: e.files,
  };
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

/**
 * Whether `hash` is the hash of entry `key`: a computed key ends with its hash
 * (`clyde-<name>-<platform>-<variant>-<hash>`), an explicit key's hash is its sha256.
 */
function hashBelongsToKey(hash: string, key: string): boolean {
  return key.endsWith(`-${hash}`) || hash === sha256(key);
}

/** A blob a save found in the store was removed before its commit and could not be rebuilt. */
class VanishedBlobError extends StoreError {}

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 1)}\n`;
}
