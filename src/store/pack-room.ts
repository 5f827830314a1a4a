/**
 * Entries that arrive as downloaded packs (the runner cache's, and the packs the bucket tier
 * assembles): restored straight from the packs' frames, and adopted by the store afterwards:
 * the one way a remote entry comes in. One pass decompresses and hashes every blob, on the
 * workers, as the files are written; the store then takes the verified frames as they are.
 *
 * An entry is `packs[0]`; a layer (an incremental save) is followed by its base (`packs[1]`, a
 * full entry), which carries the blobs the layer lacks. Each pack must prove to be the entry
 * asked of it (`packEntryMeta`: its key, and a hash that is the key's own) before anything of
 * it is used, and is checked whole (pack.ts `scanPack`) before a file is made.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { StoreError, UnsafeEntryError } from '../errors.js';
import { formatBytes, sha256 } from '../util/bytes.js';
import { freeBytes } from '../util/fsx.js';
import { contentBlobs, fileRange, type LentFrame } from './blobs.js';
import type { StoreContext } from './entries.js';
import type { Manifest } from './manifest.js';
import { entryDirName, parseMeta } from './meta.js';
import { scanPack, type PackHeader, type PackIndex } from './pack.js';
import { restoreRoots, type RootToRestore } from './restore.js';
import { totals, type SaveRoom } from './save.js';
import { writeStatCache } from './statcache.js';
import { encodeTable } from './table.js';
import type { EntryMeta, OutputRoot, RestoreOptions, RestoreResult } from './types.js';

/** A downloaded pack and the key it must prove to hold. */
export interface PackFile {
  readonly file: string;
  readonly key: string;
}

/** The full entry at the bottom of a restored entry: itself, or a layer's base. */
export interface PackBase {
  readonly key: string;
  /** The names of the blobs its pack carries. */
  readonly blobs: readonly string[];
  /** Their compressed bytes. */
  readonly storedBytes: number;
}

/** What restore did. */
export interface PackRestore {
  readonly meta: EntryMeta;
  readonly result: RestoreResult;
  readonly base: PackBase;
  /** The stat cache of the restored roots (a table), for adopt. */
  readonly rows: Buffer;
  /** The packs as scanned, so that adopting them in this process does not read them again. */
  readonly scanned: ScannedPacks;
}

type Frame = LentFrame;

/** What a scan of an entry's packs found (see PackRoom.scan). */
export interface ScannedPacks {
  readonly ix: PackIndex;
  readonly meta: EntryMeta;
  readonly frames: Map<string, Frame>;
  readonly base: PackBase;
}

/** The roots of `manifest` that `roots` asks for and the entry holds. */
export function rootsToRestore(manifest: Manifest, roots: readonly OutputRoot[]): RootToRestore[] {
  const jobs: RootToRestore[] = [];
  for (const root of roots) {
    const m = manifest.roots.find((r) => r.name === root.name);
    if (m !== undefined && m.kind !== 'absent') jobs.push({ root, manifest: m });
  }
  return jobs;
}

export class PackRoom {
  constructor(
    private readonly ctx: StoreContext,
    private readonly saver: SaveRoom,
  ) {}

  /**
   * The entry's pack index, its meta (totals recomputed), every blob's frame (the layer's own,
   * else its base's), and its full base.
   */
  private async scan(packs: readonly PackFile[]): Promise<ScannedPacks> {
    const [own, base] = packs;
    if (own === undefined) throw new StoreError('no pack to read');
    const frames = new Map<string, Frame>();
    let baseStored = 0;
    if (base !== undefined) {
      const b = await scanPack(base.file, (header) => packEntryMeta(header, base.key));
      for (const [d, f] of b.frames) frames.set(d, { ...f, file: base.file });
      baseStored = b.storedBytes;
    }
    let packMeta: EntryMeta | undefined;
    const ix = await scanPack(
      own.file,
      (header) => (packMeta = packEntryMeta(header, own.key)),
      (d) => frames.has(d),
    );
    if (packMeta === undefined) throw new StoreError('pack scan stopped');
    const baseBlobs = base !== undefined ? [...frames.keys()] : [...ix.frames.keys()];
    for (const [d, f] of ix.frames) frames.set(d, { ...f, file: own.file });
    const meta: EntryMeta = { ...packMeta, ...totals(ix.manifest), storedBytes: ix.storedBytes };
    const full = {
      key: (base ?? own).key,
      blobs: baseBlobs,
      storedBytes: base !== undefined ? baseStored : ix.storedBytes,
    };
    return { ix, meta, frames, base: full };
  }

  /**
   * Restores an entry straight from its packs, storing nothing: every file's content (and a
   * group's whole content) is verified as the workers write it, the workspace untouched on any
   * failure. `optionsFor` turns the entry's meta into the restore's options. Returns, besides,
   * the entry's full base (for an incremental save) and the stat cache of what was restored.
   */
  async restore(
    packs: readonly PackFile[],
    roots: readonly OutputRoot[],
    optionsFor: (meta: EntryMeta) => Promise<RestoreOptions>,
  ): Promise<PackRestore> {
    this.ctx.blobs.pool();
    const scanned = await this.scan(packs);
    const { ix, meta, frames, base } = scanned;
    this.ctx.blobs.attach(ix.manifest, ix.locations);
    const { quiet, files, bytes, statCache } = await restoreRoots(
      this.ctx.blobs,
      rootsToRestore(ix.manifest, roots),
      await optionsFor(meta),
      Promise.resolve(),
      { frames },
    );
    await quiet;
    const rows = encodeTable({ key: meta.key, ...statCache.head }, statCache.roots);
    return { meta, result: { files, bytes }, base, rows, scanned };
  }

  /**
   * Makes an entry that `restore` restored an entry of this store, when `roots` were all its
   * outputs: its frames are copied as they are (every one of them was verified as it was restored), or with `lend` read in place
   * from the packs (BlobStore.lend: the packs then outlive the store), its table committed, and
   * `rows` made its stat cache for `roots`, so the next save reads only what changed.
   * `scanned`: restore's scan of the same packs, when this process made it. Returns the entry
   * and the frames it took (lent: what another process must lend to open this store again).
   */
  async adopt(
    packs: readonly PackFile[],
    roots: readonly OutputRoot[],
    rows: Buffer,
    opts: { scanned?: ScannedPacks | undefined; lend?: boolean } = {},
  ): Promise<{ entry: EntryMeta; frames: ReadonlyMap<string, LentFrame> }> {
    const { ix, meta, frames } = opts.scanned ?? (await this.scan(packs));
    // Only what was restored was verified: an output left out may hold anything under its
    // digests, and a blob once in the store is adopted by later saves as it is.
    const left = ix.manifest.roots.filter(
      (r) => r.kind !== 'absent' && !roots.some((o) => o.name === r.name),
    );
    if (left.length > 0) {
      throw new StoreError(
        `its output(s) ${left.map((r) => r.name).join(', ')} were not restored here, so not verified`,
      );
    }
    const needed = new Map<string, Frame>();
    for (const name of contentBlobs(ix.manifest, ix.locations)) {
      const f = frames.get(name);
      if (f === undefined) throw new StoreError(`the packs lack blob ${name}`);
      needed.set(name, f);
    }
    if (opts.lend === true) this.ctx.blobs.lend(needed);
    else await this.copyFrames(needed);
    const entry = await this.saver.commitReceived(meta, ix.manifest, ix.locations, ix.storedBytes);
    await writeStatCache(this.ctx.root, this.ctx.tmpDir, entry.key, roots, rows);
    return { entry, frames: needed };
  }

  /**
   * Copies each frame into a blob file of the store, as it is; refused before the first when
   * they would not fit (a blob the store holds is not copied again).
   */
  private async copyFrames(frames: ReadonlyMap<string, Frame>): Promise<void> {
    let bytes = 0;
    for (const [name, f] of frames) {
      if ((await this.ctx.blobs.ownSize(name)) === undefined) bytes += f.length;
    }
    const free = await freeBytes(this.ctx.blobs.dir);
    if (free !== undefined && bytes > free) {
      throw new StoreError(
        `the entry's ${formatBytes(bytes)} of new blobs do not fit in the local store (${formatBytes(free)} free)`,
      );
    }
    const handles = new Map<string, FileHandle>();
    try {
      for (const [name, f] of frames) {
        let fh = handles.get(f.file);
        if (fh === undefined) {
          fh = await fs.open(f.file, 'r');
          handles.set(f.file, fh);
        }
        await this.ctx.blobs.adoptFrame(name, fileRange(fh, f.offset, f.length, `blob ${name}`));
      }
    } finally {
      for (const fh of handles.values()) await fh.close();
    }
  }
}

/**
 * The meta of a pack fetched for `key`, once proven to be that entry: its key is `key`, and its
 * hash is the key's own (the key's last part, or the sha256 of an explicit key), so a pack
 * cannot pass for, or take the directory of, another entry.
 */
function packEntryMeta(header: PackHeader, key: string): EntryMeta {
  const meta = parseMeta(header.meta);
  if (meta.key !== key) throw new UnsafeEntryError(`the pack holds '${meta.key}', not '${key}'`);
  if (!hashBelongsToKey(meta.hash, meta.key)) {
    throw new UnsafeEntryError(`the pack's hash ${meta.hash} is not that of its key`);
  }
  entryDirName(meta);
  return meta;
}

/**
 * Whether `hash` is the hash of entry `key`: a computed key ends with its hash
 * (`clyde-<name>-<platform>-<variant>-<hash>`), an explicit key's hash is its sha256.
 */
function hashBelongsToKey(hash: string, key: string): boolean {
  return key.endsWith(`-${hash}`) || hash === sha256(key);
}
