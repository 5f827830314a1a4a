/** One requested output path: `name` as configured (posix, relative to the workspace, or
 * starting with '~/' or '/' for paths outside it), `absPath` where it lives on this machine. */
export interface OutputRoot {
  readonly name: string;
  readonly absPath: string;
}

/**
 * Which symlinks that leave their root a save keeps and a restore makes (snapshot.ts,
 * restore.ts). One that stays inside `workspace` always; any other only with
 * `keepOutsideLinks` (the `keep-outside-links` input).
 */
export interface LinkOptions {
  /** The workspace (absolute). Without it, no link leaving its root is inside it. */
  readonly workspace?: string;
  readonly keepOutsideLinks?: boolean;
}

export interface EntryMeta {
  readonly schema: 1;
  readonly key: string;
  readonly package: string;
  readonly version: string;
  /** Directory name of the entry: the key's hash. */
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  /** ISO-8601 timestamps. */
  readonly createdAt: string;
  readonly lastAccessAt: string;
  /** Sum of the uncompressed sizes of the entry's files. */
  readonly sizeBytes: number;
  /** Sum of the compressed sizes of the blobs the entry references (shared ones included). */
  readonly storedBytes: number;
  readonly files: number;
  /** Root names the entry holds. */
  readonly roots: readonly string[];
  /** The key manifest (src/key/types.ts KeyManifest), kept for explain. */
  readonly keyManifest?: unknown;
}

export interface SaveRequest extends LinkOptions {
  readonly key: string;
  readonly package: string;
  readonly version: string;
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  readonly roots: readonly OutputRoot[];
  readonly keyManifest?: unknown;
  /**
   * The key of the entry restored in main, if any. Files whose size, mtime and inode are
   * unchanged since that restore (or save) are not read again. When absent, the newest entry
   * with the same package, platform and variant serves.
   */
  readonly basis?: string;
  /**
   * Store the small files of this save in shared group blobs (about 1 MiB of content each):
   * within 5% of one tar+zstd stream instead of ~14% larger. On by default (the index counts
   * group blobs as references, blobs.ts `referencedBlobs`); false stores one blob
   * per file.
   */
  readonly groupSmallFiles?: boolean;
  /** Called with the save's counters (files read and reused, bytes written; snapshot.ts). */
  readonly onStats?: (stats: SaveStats) => void;
}

export interface SaveResult {
  readonly entry: EntryMeta;
  /** False when the key was already in the store (nothing written). */
  readonly created: boolean;
  readonly newBlobs: number;
  /** Compressed bytes newly written to blobs/. */
  readonly newBytes: number;
  /** What the save left out and why (each also a core.warning), for the job summary. */
  readonly warnings?: readonly string[];
  /**
   * A new entry's table and the blobs it references (LocalStore.savedPackStream: its pack,
   * without reading the table back).
   */
  readonly made?: { readonly table: Buffer; readonly blobs: readonly string[] };
}

export interface RestoreResult {
  readonly files: number;
  readonly bytes: number;
}

export interface RestoreOptions extends LinkOptions {
  /** Set file and directory mtimes to the saved ones. */
  readonly mtimes?: boolean;
  /**
   * Give every restored file and directory this mtime (epoch milliseconds) instead: wins over
   * `mtimes`. The restore step passes a time after every unchanged source's (src/run/mtimes.ts).
   */
  readonly mtimeMs?: number;
}

/** One entry as the prune policy sees it (local store or runner cache). */
export interface SnapshotEntry {
  readonly key: string;
  readonly package: string;
  readonly version: string;
  readonly platform: string;
  readonly variant: string;
  /** Uncompressed size of the entry's files. */
  readonly sizeBytes: number;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly lastAccessAt: number;
  /** Digests of the blobs the entry references (local store only). */
  readonly blobs: readonly string[];
}

/** What the prune policy plans from: every entry, and the stored size of every blob. */
export interface StoreSnapshot {
  readonly entries: readonly SnapshotEntry[];
  /** digest -> bytes on disk (compressed). */
  readonly blobSizes: ReadonlyMap<string, number>;
}

export interface RemoveManyResult {
  /** Keys that were in the store and are gone. */
  readonly removed: string[];
  /** Bytes on disk of the blobs deleted because nothing references them any more. */
  readonly freedBytes: number;
}

export interface VerifyOptions {
  /** Decompress and re-hash every referenced blob (slow: reads the whole store). */
  readonly deep?: boolean;
  /**
   * Fix what was found, under the lock: drop entries that are damaged or miss blobs, recount
   * references, delete orphan blobs and stray entry directories.
   */
  readonly repair?: boolean;
  /**
   * Repair leaves orphan blobs younger than this alone (a running save may be about to
   * reference them). Default 10 minutes.
   */
  readonly orphanMinAgeMs?: number;
}

export interface VerifyReport {
  /** True when no entry is damaged, no referenced blob is missing or corrupt, and every
   *  reference count is right. Orphans and strays are garbage, not damage. */
  readonly ok: boolean;
  readonly entries: number;
  readonly blobs: number;
  /** One line per problem found. */
  readonly problems: readonly string[];
  /** Keys whose meta.json or artifact is unreadable, invalid or disagrees with the index. */
  readonly badEntries: readonly string[];
  readonly missingBlobs: readonly string[];
  readonly corruptBlobs: readonly string[];
  /** Blobs whose counted references differ from the entries that reference them. */
  readonly refcountMismatches: readonly string[];
  /** Blob files no entry references (left by a killed save or an unfinished removal). */
  readonly orphanBlobs: readonly string[];
  /** Entry directories the index does not list (a save killed before indexing). */
  readonly strayDirs: readonly string[];
  readonly repaired: boolean;
}

export interface StoreStats {
  readonly entries: number;
  readonly blobs: number;
  /** Sum of the entries' uncompressed sizes. */
  readonly logicalBytes: number;
  /** Sum of the entries' compressed sizes, shared blobs counted once per entry. */
  readonly referencedBytes: number;
  /** Sum of the blobs' sizes on disk, each blob once. */
  readonly storedBytes: number;
  /** referencedBytes / storedBytes: what deduplication saves (1 when nothing is shared). */
  readonly dedupRatio: number;
  /** logicalBytes / storedBytes: deduplication and compression together. */
  readonly spaceRatio: number;
}

/** Named points of a save, commit or removal where a test may stop the process (`StoreFaults`). */
export type PausePoint =
  /** save: every blob written, nothing else yet. */
  | 'after-blobs'
  /** save/import: the entry's artifact and meta.json written in tmp/. */
  | 'after-artifact-tmp'
  /** commit, under the lock: before the entry directory is renamed into place. */
  | 'before-rename'
  /** commit, under the lock: the entry is in place, the index not yet updated. */
  | 'before-index'
  /** removal, under the lock: the index is updated, directories and blobs not yet deleted. */
  | 'after-remove-index';

/**
 * Fault injection, for tests (LocalStoreOptions.faults): none of it is set in production. The
 * implementations live in test-support/store/faults.ts; a step run from dist/ gets them through
 * the one environment variable src/run/common.ts reads (`FAULTS_MODULE_ENV`).
 */
export interface StoreFaults {
  /** Awaited at each named point: a test may stop or kill the process there, or let it go on. */
  readonly pause?: (point: PausePoint) => Promise<void>;
  /** Blob writes after this many (per thread) fail with ENOSPC, as on a full disk. */
  readonly enospcAfter?: number;
  /** Digests whose content claim a save starts with taken (a 64-bit prefix collision). */
  readonly preclaimed?: readonly string[];
}

/** What a save did, counted (the 1%-changed save is judged by these). */
export interface SaveStats {
  /** Regular files in the saved roots. */
  readonly files: number;
  /** Files whose digest came from the stat cache (size, mtime and inode unchanged): not read. */
  readonly reused: number;
  /** Files read and hashed. */
  readonly read: number;
  readonly bytesRead: number;
  /** Blobs (standalone and group) written and their bytes on disk. */
  readonly blobsWritten: number;
  readonly bytesWritten: number;
  /** Bytes of the entry itself (artifact and meta.json; its stat cache is a link to the artifact). */
  readonly entryBytes: number;
  /** Group blobs written, and standalone blobs stored as they are (incompressible). */
  readonly groups: number;
  readonly rawBlobs: number;
}

// ---- the manifest: what an entry holds (manifest.ts checks it, table.ts encodes it) ----

export type ManifestEntryType = 'file' | 'dir' | 'symlink';

/**
 * How a symlink that leaves its root is written down (the entry says so; restore.ts decides
 * whether this workspace takes it):
 * - `link`: relative to the link's own directory, `..` segments first, then names (so it can be
 *   resolved without the filesystem), e.g. npm's `node_modules/a -> ../packages/a`;
 * - `workspace`: '/' and a path relative to the workspace it was saved in, re-made as an
 *   absolute link into the workspace it is restored in;
 * - `absolute`: an absolute path outside the workspace, used as it is.
 * A link without an anchor is relative and resolves inside its root.
 */
export type LinkAnchor = 'link' | 'workspace' | 'absolute';

export interface ManifestEntry {
  /** Posix, relative to the root, no '.' or '..' segments. */
  readonly path: string;
  readonly type: ManifestEntryType;
  /** Permission bits only (0..0o777). */
  readonly mode: number;
  /** Content bytes (files); 0 otherwise. */
  readonly size: number;
  readonly mtimeMs: number;
  /** sha256 of the content (files). */
  readonly digest?: string;
  /** The link text (symlinks): relative, resolving inside the root, unless `anchor` says. */
  readonly target?: string;
  /** Symlinks that leave their root: how `target` is to be read. */
  readonly anchor?: LinkAnchor;
}

/** `dir`: a directory and its entries. `file`: the root is one file (`file` holds it, path ''). */
export type RootKind = 'dir' | 'file' | 'absent';

export interface ManifestRoot {
  readonly name: string;
  readonly kind: RootKind;
  /** Mode and mtime of the root itself (dir and file roots). */
  readonly mode?: number;
  readonly mtimeMs?: number;
  /** Dir roots: the entries under it, parents before children. */
  readonly entries: readonly ManifestEntry[];
  /** File roots: the file (its path is ''). */
  readonly file?: ManifestEntry;
}

export interface Manifest {
  readonly schema: 1;
  readonly roots: readonly ManifestRoot[];
}
