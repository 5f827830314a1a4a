/**
 * The save room: a new entry comes to be here, from a walk of the outputs (`save`) or from
 * downloaded packs whose every file was verified as it was restored (`commitReceived`, for
 * pack-room.ts `adopt`), through one commit. Blobs are written lock-free while the walk
 * goes on (snapshot.ts; content addressing: one name, one content); the commit writes the
 * entry's directory in tmp/, then, under the lock, checks that every blob it references is on
 * disk (re-writing from the saved files any that a concurrent removal deleted), renames the
 * directory into place and indexes it. A crash in between leaves garbage (a stray directory,
 * orphan blobs) that `verify({ repair })` collects, never a listed entry that lacks something.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { sha256 } from '../util/bytes.js';
import { exists, rename, tempName } from '../util/fsx.js';
import { loadBasis } from './basis.js';
import type { Location } from './blobs.js';
import {
  ARTIFACT,
  META,
  metaJson,
  pausePoint,
  toIndexEntry,
  type EntryFiles,
  type StoreContext,
} from './entries.js';
import type { FileSig, IndexKeeper } from './index-keeper.js';
import { manifestFiles, type Manifest } from './manifest.js';
import { checkHash, checkKey, entryDirName } from './meta.js';
import { MAX_GROUP_BYTES } from './pack.js';
import { snapshotRoots } from './snapshot.js';
import { linkStatCache } from './statcache.js';
import { encodeTable, GroupList } from './table.js';
import { manifestTable } from './table-manifest.js';
import type { EntryMeta, OutputRoot, SaveRequest, SaveResult } from './types.js';

/** How the save room reads entries (the facade's `get` and `load`). */
export interface EntryReader {
  get(key: string): Promise<EntryMeta | undefined>;
  load(key: string): Promise<{ meta: EntryMeta; table: Buffer; manifest: Manifest }>;
}

/** A blob a save found in the store was removed before its commit and could not be rebuilt. */
class VanishedBlobError extends StoreError {}

export class SaveRoom {
  constructor(
    private readonly ctx: StoreContext,
    private readonly files: EntryFiles,
    private readonly keeper: IndexKeeper,
    private readonly entries: EntryReader,
  ) {}

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
    const existing = await this.entries.get(req.key);
    if (existing !== undefined)
      return { entry: existing, created: false, newBlobs: 0, newBytes: 0 };
    // The index as this save found it: if it is still the same at commit, nothing was removed
    // meanwhile, and the blobs the walk found or wrote are all still there.
    const startSig = this.keeper.sig;

    // [store-speed] the previous entry of the package: unchanged files are not read again.
    const basis = !reuse
      ? undefined
      : await loadBasis(
          this.ctx.root,
          this.ctx.blobs,
          req,
          (k) => this.entries.get(k),
          async () => [...(await this.keeper.index()).entries.values()],
          async (k) => (await this.entries.load(k)).manifest,
        );
    const snap = await snapshotRoots(req.key, req.roots, this.ctx.blobs, {
      basis,
      groupSmall: req.groupSmallFiles !== false,
      links: { workspace: req.workspace, keepOutsideLinks: req.keepOutsideLinks },
      preclaimed: this.ctx.faults.preclaimed,
    });
    await pausePoint(this.ctx, 'after-blobs');
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
    const manifest = (): Manifest => this.files.tableManifest(snap.table);
    const { entry, created } = await this.commit(
      meta,
      snap.table,
      manifest,
      async (digest) => this.rewriteFromRoots(digest, manifest(), req.roots),
      { sig: startSig, sizes: snap.stored },
    );
    const metaBytes = Buffer.byteLength(metaJson(meta));
    req.onStats?.({ ...snap.stats, entryBytes: snap.table.length + metaBytes });
    // [store-speed] the entry's table is also the stat cache of the roots just saved: the next
    // save of the package skips the files that did not change.
    if (created) {
      const artifact = path.join(this.files.dirOf(entryDirName(meta)), ARTIFACT);
      await linkStatCache(
        this.ctx.root,
        this.ctx.tmpDir,
        req.key,
        req.roots,
        artifact,
        snap.table,
      ).catch(() => {});
    }
    const warnings = snap.warnings;
    if (!created) return { entry, created, newBlobs: 0, newBytes: 0, warnings };
    const made = { table: snap.table, blobs: [...snap.stored.keys()] };
    return { entry, created, newBlobs: snap.newBlobs, newBytes: snap.newBytes, warnings, made };
  }

  /**
   * Commits an entry that came from elsewhere (a pack) once its blobs are on disk. Sizes and
   * counts are recomputed from the manifest, not taken from the pack's word; a creation time in
   * the future (which would keep the entry the newest fallback) is now; the table is written as
   * this store writes it, not as the pack's bytes.
   */
  async commitReceived(
    packMeta: EntryMeta,
    manifest: Manifest,
    locations: Map<string, Location>,
    storedBytes: number,
  ): Promise<EntryMeta> {
    const now = new Date();
    const meta: EntryMeta = {
      ...packMeta,
      createdAt:
        Date.parse(packMeta.createdAt) > now.getTime() ? now.toISOString() : packMeta.createdAt,
      lastAccessAt: now.toISOString(),
      ...totals(manifest),
      storedBytes,
    };
    const groups = new GroupList();
    const rows = manifestTable(manifest.roots, (d) => locations.get(d), groups);
    const table = encodeTable({ groups: groups.list }, rows);
    this.ctx.blobs.attach(manifest, locations);
    return (await this.commit(meta, table, () => manifest)).entry;
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
    const staging = tempName(this.ctx.tmpDir, 'entry');
    try {
      // (The staging directory is this commit's own, and is renamed whole: its files need no
      // temporary names of their own.)
      await fs.mkdir(staging, { recursive: true });
      await Promise.all([
        fs.writeFile(path.join(staging, ARTIFACT), artifact),
        fs.writeFile(path.join(staging, META), metaJson(meta)),
      ]);
      await pausePoint(this.ctx, 'after-artifact-tmp');
      return await this.keeper.mutate(async (ix) => {
        const listed = ix.entries.get(meta.key);
        if (listed !== undefined) {
          const there = await this.files.metaOf(listed);
          if (there !== undefined) return { entry: there, created: false };
          throw new StoreError(`entry ${meta.key} is listed but unreadable (verify can repair it)`);
        }
        // Never index an entry whose content is not all there: a removal may have deleted a
        // blob since the save found it present. When the index is the very one the save began
        // with (no commit or removal since), the sizes the save saw still hold.
        const unchanged = saved?.sig !== undefined && this.keeper.sig === saved.sig;
        const stored = new Map<string, number>();
        const refs = unchanged ? saved.sizes : await this.ctx.blobs.referencedBlobs(manifest());
        for (const [name, found] of refs) {
          let size = found ?? (await this.ctx.blobs.ownSize(name));
          if (size === undefined && rewrite !== undefined && (await rewrite(name))) {
            size = await this.ctx.blobs.ownSize(name);
          }
          if (size === undefined) {
            throw new VanishedBlobError(`blob ${name} vanished while saving ${meta.key}`);
          }
          stored.set(name, size);
        }
        await pausePoint(this.ctx, 'before-rename');
        const dest = this.files.dirOf(rel);
        // A directory the index does not list is a stray of a killed save: replace it. One the
        // index gives to another entry (two keys, one package/version/hash) is never touched.
        if (await exists(dest)) {
          const owner = [...ix.entries.values()].find((e) => entryDirName(e) === rel);
          if (owner !== undefined) {
            throw new StoreError(
              `entry ${meta.key} would take the directory of entry ${owner.key} (${rel})`,
            );
          }
          await this.files.deleteEntryDir(rel);
        }
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await rename(staging, dest);
        await pausePoint(this.ctx, 'before-index');
        ix.add(toIndexEntry(meta, [...stored.keys()]), stored);
        await this.keeper.persist(ix);
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
    const members = [...this.ctx.blobs.locationsOf(manifest)].filter(
      ([, loc]) => loc.group === digest,
    );
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
    await this.ctx.blobs.put(digest, content);
    return true;
  }
}

/** An entry's sizes, file count and roots, counted from its manifest. */
export function totals(m: Manifest): { sizeBytes: number; files: number; roots: string[] } {
  let sizeBytes = 0;
  let files = 0;
  for (const f of manifestFiles(m)) {
    sizeBytes += f.size;
    files++;
  }
  return { sizeBytes, files, roots: m.roots.filter((r) => r.kind !== 'absent').map((r) => r.name) };
}
