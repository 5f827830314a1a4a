/**
 * The maintenance room: removals, verify and repair, the sweeps. Decide, then act (STYLE.md
 * habit 5): this room gathers the facts (the index, files on disk, their sizes and times) and
 * carries out what the pure verdicts of src/prune/policy.ts decide (`planDropBroken`,
 * `planRepair`, `planOrphanBlobs`, `planSweepOldLayout`); it decides no deletion itself.
 *
 * A removal un-indexes the entry and then deletes its directory and freed blobs (a blob goes
 * only when its reference count reaches zero), so a crash in between leaves garbage that
 * `verify({ repair })` collects, never a listed entry that lacks something.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  planDropBroken,
  planOrphanBlobs,
  planRepair,
  planSweepOldLayout,
} from '../prune/policy.js';
import { exists, rename, tempName } from '../util/fsx.js';
import { EntryFiles, OLD_LAYOUT, pausePoint, UNPACKED, type StoreContext } from './entries.js';
import { compareHex, StoreIndex, type EntryFields, type IndexEntry } from './index-file.js';
import type { IndexKeeper } from './index-keeper.js';
import { withLock } from './lock.js';
import { blobSizes, type Manifest } from './manifest.js';
import { entryDirName } from './meta.js';
import { removeStatCaches } from './statcache.js';
import type { RemoveManyResult, VerifyOptions, VerifyReport } from './types.js';

const ORPHAN_MIN_AGE_MS = 10 * 60 * 1000;

export class MaintenanceRoom {
  constructor(
    private readonly ctx: StoreContext,
    private readonly files: EntryFiles,
    private readonly keeper: IndexKeeper,
  ) {}

  /**
   * Removes the entries (unknown keys are skipped) under one lock: the index first, then
   * their directories and the blobs whose reference count fell to zero.
   */
  async removeMany(keys: readonly string[]): Promise<RemoveManyResult> {
    return this.keeper.mutate(async (ix) => {
      const removed: string[] = [];
      const dirs: string[] = [];
      const freed = new Map<string, number>();
      for (const key of new Set(keys)) {
        const gone = ix.delete(key);
        if (gone === undefined) continue;
        removed.push(key);
        dirs.push(entryDirName(gone.entry));
        for (const [d, size] of gone.freed) freed.set(d, size);
      }
      if (removed.length === 0) return { removed, freedBytes: 0 };
      await this.keeper.persist(ix);
      await pausePoint(this.ctx, 'after-remove-index');
      for (const rel of dirs) await this.files.deleteEntryDir(rel);
      for (const key of removed) await removeStatCaches(this.ctx.root, key);
      let freedBytes = 0;
      for (const [d, size] of freed) {
        await this.ctx.blobs.remove(d);
        freedBytes += size;
      }
      return { removed, freedBytes };
    });
  }

  /**
   * After a failed restore: if some of the entry's blobs are gone (a corrupt one is deleted
   * when read), every entry needing them leaves the index (`planDropBroken`), so it becomes a
   * plain miss.
   */
  async dropBroken(manifest: Manifest): Promise<void> {
    const gone: string[] = [];
    let names: string[];
    try {
      names = [...(await this.ctx.blobs.referencedBlobs(manifest)).keys()];
    } catch {
      return; // the blobs cannot be listed: restore reported it; verify finds the entry
    }
    for (const d of names) if ((await this.ctx.blobs.ownSize(d)) === undefined) gone.push(d);
    if (gone.length === 0) return;
    try {
      await this.keeper.mutate(async (ix) => {
        const still = new Set<string>();
        for (const d of gone) if ((await this.ctx.blobs.ownSize(d)) === undefined) still.add(d);
        const broken = planDropBroken(entryFacts(ix), still);
        if (broken.length === 0) return;
        core.warning(
          `clyde-cache: ${still.size} blob(s) of the local store are missing or were corrupt; dropping ${broken.length} entr${broken.length === 1 ? 'y' : 'ies'} that need them`,
        );
        const freed = new Map<string, number>();
        const dirs: string[] = [];
        for (const v of broken) {
          const gone = ix.delete(v.target);
          if (gone === undefined) continue;
          dirs.push(entryDirName(gone.entry));
          for (const [d, s] of gone.freed) freed.set(d, s);
        }
        await this.keeper.persist(ix);
        for (const rel of dirs) await this.files.deleteEntryDir(rel);
        for (const d of freed.keys()) await this.ctx.blobs.remove(d);
      });
    } catch (err) {
      core.debug(`clyde-cache: could not drop broken entries: ${err}`);
    }
  }

  /**
   * Checks that every listed entry's meta.json and artifact parse, validate and agree with the
   * index, that every referenced blob exists (`deep`: and decodes to its digest), and that the
   * reference counts are right; lists orphan blobs and stray entry directories. `repair`
   * then fixes what was found, under the lock.
   */
  async verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    const ix = await this.keeper.index();
    const problems: string[] = [];
    const badEntries: string[] = [];
    const missing = new Set<string>();
    const corrupt = new Set<string>();
    const counted = new Map<string, number>();
    const contentSize = new Map<string, number>();
    for (const e of ix.sortedEntries()) {
      const rel = entryDirName(e);
      const meta = await this.files.readMetaOf(rel, e.key);
      let manifest: Manifest | undefined;
      try {
        manifest = (await this.files.readArtifact(rel)).manifest;
      } catch (err) {
        problems.push(`entry ${e.key}: ${err instanceof Error ? err.message : err}`);
      }
      if (meta === undefined) problems.push(`entry ${e.key}: meta.json unreadable or not its own`);
      if (manifest !== undefined) {
        try {
          // content size of each blob file: a standalone file's own, a group's whole
          const locs = this.ctx.blobs.locationsOf(manifest);
          for (const [d, size] of blobSizes(manifest)) {
            const loc = locs.get(d);
            if (loc === undefined) contentSize.set(d, size);
            else contentSize.set(loc.group, loc.groupSize);
          }
          const names = [...(await this.ctx.blobs.referencedBlobs(manifest)).keys()];
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
      if ((await this.ctx.blobs.ownSize(d)) === undefined) {
        missing.add(d);
        problems.push(`blob ${d} is missing`);
      } else if (opts.deep && contentSize.has(d)) {
        // (A blob that only unreadable entries reference has no size to check it against: those
        // entries are reported, not it.)
        try {
          await this.ctx.blobs.verifyStored(d, {
            size: contentSize.get(d) as number,
            members: [],
          });
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

    const onDisk = await this.files.listBlobFiles();
    const orphans = onDisk.filter((d) => !counted.has(d)).sort(compareHex);
    const listedDirs = new Set([...ix.entries.values()].map((e) => entryDirName(e)));
    const strays = (await this.files.scanEntryDirs()).filter((rel) => !listedDirs.has(rel));

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

  /** verify's repair, under the lock: the facts now, `planRepair`'s verdicts, then the deletes. */
  private async repair(report: VerifyReport, orphanMinAgeMs: number): Promise<void> {
    await this.keeper.mutate(async (ix) => {
      const entries = entryFacts(ix);
      const blobSizes = new Map<string, number | undefined>();
      for (const e of entries) {
        for (const d of e.blobs) if (!blobSizes.has(d)) blobSizes.set(d, undefined);
      }
      const corrupt = new Set(report.corruptBlobs);
      for (const d of blobSizes.keys()) {
        if (!corrupt.has(d)) blobSizes.set(d, await this.ctx.blobs.ownSize(d));
      }
      const plan = planRepair({
        entries,
        badEntries: report.badEntries,
        missingBlobs: report.missingBlobs,
        corruptBlobs: report.corruptBlobs,
        blobSizes,
        entryDirs: await this.files.scanEntryDirs(),
      });
      for (const v of plan.blobs) await this.ctx.blobs.remove(v.target);
      // The index anew from the entries that stay: counts from them, sizes from the files.
      const fresh = new StoreIndex();
      fresh.generation = ix.generation;
      for (const e of plan.keep) {
        const rec = ix.entries.get(e.key);
        if (rec === undefined) continue;
        fresh.add({ ...fieldsOf(rec), blobs: e.blobs }, plan.keptBlobSizes);
      }
      await this.keeper.persist(fresh);
      for (const v of plan.dirs) await this.files.deleteEntryDir(v.target);
      const unreferenced: { digest: string; mtimeMs: number; size: number }[] = [];
      for (const d of await this.files.listBlobFiles()) {
        if (fresh.blobs.has(d)) continue;
        const st = await fs.lstat(this.ctx.blobs.pathOf(d)).catch(() => undefined);
        if (st !== undefined) unreferenced.push({ digest: d, mtimeMs: st.mtimeMs, size: st.size });
      }
      const referenced = new Set(plan.keptBlobSizes.keys());
      const orphans = planOrphanBlobs(unreferenced, referenced, Date.now(), orphanMinAgeMs);
      for (const v of orphans) await this.ctx.blobs.remove(v.target);
    });
  }

  /**
   * Removes what an older store left: each directory in old-layout/ (store-layout.ts moved it
   * there on open) and unpacked/ (the uncompressed copies of earlier versions' hard-link and
   * clone restores), as `planSweepOldLayout` gives them; each is moved to tmp/ under the lock
   * (so no open is moving files into old-layout/ meanwhile), then deleted. A dry run only
   * counts. Returns the files and bytes removed (or that would be).
   */
  async sweepOldLayout(dryRun = false): Promise<{ files: number; bytes: number }> {
    const root = this.ctx.root;
    const names = (await fs.readdir(path.join(root, OLD_LAYOUT)).catch(() => [] as string[])).map(
      (name) => path.join(OLD_LAYOUT, name),
    );
    if (await exists(path.join(root, UNPACKED))) names.push(UNPACKED);
    if (names.length === 0) return { files: 0, bytes: 0 };
    const total = { files: 0, bytes: 0 };
    const found: { name: string; bytes: number }[] = [];
    for (const name of names) {
      const { files, bytes } = await treeSize(path.join(root, name));
      total.files += files;
      total.bytes += bytes;
      found.push({ name, bytes });
    }
    const verdicts = planSweepOldLayout(found);
    if (dryRun) return total;
    const trash: string[] = [];
    await withLock(this.ctx.lock, async () => {
      for (const v of verdicts) {
        const to = tempName(this.ctx.tmpDir, 'old-layout');
        await rename(path.join(root, v.target), to).then(
          () => trash.push(to),
          () => {}, // gone meanwhile (another prune)
        );
      }
      await fs.rmdir(path.join(root, OLD_LAYOUT)).catch(() => {});
    });
    for (const t of trash) await fs.rm(t, { recursive: true, force: true });
    return total;
  }
}

/** The index's entries as the policy's verdicts see them. */
function entryFacts(ix: StoreIndex): { key: string; dir: string; blobs: string[] }[] {
  return ix.sortedEntries().map((e) => ({
    key: e.key,
    dir: entryDirName(e),
    blobs: ix.blobNames(e),
  }));
}

/** An index entry's fields, without its blob slots (to add it to another index). */
function fieldsOf(e: IndexEntry): EntryFields {
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
