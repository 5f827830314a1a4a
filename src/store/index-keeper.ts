/**
 * The index's lifecycle: load index.bin (re-read only when another process replaced it), apply
 * the access journal, rebuild the index from the entry directories when it is missing or fails
 * its checks, and change it under the lock (`mutate`, `persist`). The other rooms never read or
 * write index.bin themselves.
 *
 * A hit (`touch`) takes no lock and rewrites nothing: it appends to the access journal, which
 * every read of the index applies and the next commit or removal folds in.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../util/fsx.js';
import { appendTouch, JOURNAL_NAME, JOURNAL_ROTATE_BYTES, JournalTail } from './access-journal.js';
import { EntryFiles, toIndexEntry, type StoreContext } from './entries.js';
import { decodeIndex, encodeIndex, StoreIndex } from './index-file.js';
import { withLock } from './lock.js';
import { entryDirName } from './meta.js';
import * as path from 'node:path';

/** The stat fields that change whenever index.bin is replaced (rename gives a new inode). */
export interface FileSig {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export class IndexKeeper {
  /** The index as last read or written by this instance, and the file it came from. */
  private cached: { index: StoreIndex; sig: FileSig } | undefined;
  /** How much of the access journal the cached index has taken in. */
  private readonly journal: JournalTail;
  /** Why the index file was last refused (for the rebuild warning). */
  private problem: string | undefined;

  constructor(
    private readonly ctx: StoreContext,
    private readonly files: EntryFiles,
  ) {
    this.journal = new JournalTail(path.join(ctx.root, JOURNAL_NAME));
  }

  /** The signature of index.bin as this instance last read or wrote it. */
  get sig(): FileSig | undefined {
    return this.cached?.sig;
  }

  /**
   * The index, re-read when index.bin was replaced since this instance last saw it (another
   * process committed), rebuilt under the lock when it is missing or fails its checks.
   */
  async index(): Promise<StoreIndex> {
    const loaded = await this.tryLoad();
    if (loaded !== undefined) return loaded;
    return withLock(this.ctx.lock, async () => (await this.tryLoad()) ?? (await this.rebuild()));
  }

  /**
   * Runs `fn` under the lock on the current index. `fn` calls `persist` to write its changes;
   * if it throws, the cached index (possibly half-changed) is dropped and re-read next time.
   */
  async mutate<T>(fn: (ix: StoreIndex) => Promise<T>): Promise<T> {
    return withLock(this.ctx.lock, async () => {
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
  async persist(ix: StoreIndex): Promise<void> {
    ix.generation++;
    await this.applyJournal(ix);
    await writeFileAtomic(this.ctx.indexPath, encodeIndex(ix), this.ctx.tmpDir);
    const st = await fs.stat(this.ctx.indexPath);
    this.cached = { index: ix, sig: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } };
    if (this.journal.consumed >= JOURNAL_ROTATE_BYTES && (await this.journal.unchanged())) {
      await fs.rm(this.journal.file, { force: true });
      this.journal.reset();
    }
  }

  /**
   * Sets the entry's lastAccessAt to now: one append to the access journal, no lock, no rewrite
   * (the next commit or removal carries it into index.bin).
   */
  async touch(key: string): Promise<void> {
    const rec = (await this.index()).entries.get(key);
    if (rec === undefined) return;
    const now = Date.now();
    await appendTouch(this.journal.file, key, now);
    if (now > rec.lastAccessAt) rec.lastAccessAt = now;
  }

  /** The cached or freshly read index; undefined when the file is missing or bad. */
  private async tryLoad(): Promise<StoreIndex | undefined> {
    let sig: FileSig;
    try {
      const st = await fs.stat(this.ctx.indexPath);
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
        index = decodeIndex(await fs.readFile(this.ctx.indexPath));
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

  /** Rebuilds index.bin from the entry directories; the caller holds the lock. */
  private async rebuild(): Promise<StoreIndex> {
    const ix = new StoreIndex();
    const dirs = await this.files.scanEntryDirs();
    for (const rel of dirs) {
      try {
        const meta = await this.files.readMeta(rel);
        if (entryDirName(meta) !== rel || ix.entries.has(meta.key)) continue;
        const { manifest } = await this.files.readArtifact(rel);
        const refs = await this.ctx.blobs.referencedBlobs(manifest);
        const digests = [...refs.keys()];
        const sizes = new Map<string, number>();
        for (const [d, size] of refs) if (size !== undefined) sizes.set(d, size);
        // An entry missing a blob cannot be restored: it stays out (verify repair deletes it).
        if (sizes.size === digests.length) ix.add(toIndexEntry(meta, digests), sizes);
      } catch {
        // not an entry (or a damaged one): leave it out
      }
    }
    const hadIndex = this.problem !== undefined;
    if (hadIndex || dirs.length > 0) {
      core.warning(
        `clyde-cache: the local store index ${this.ctx.indexPath} was ${hadIndex ? `unusable (${this.problem})` : 'missing'}; rebuilt it from ${ix.entries.size} entr${ix.entries.size === 1 ? 'y' : 'ies'}`,
      );
    }
    this.problem = undefined;
    // Access times since the entries were saved: whatever the journal still holds.
    this.journal.reset();
    await this.persist(ix);
    return ix;
  }
}
