/** One requested output path: `name` as configured (posix, relative to the workspace, or
 * starting with '~/' or '/' for paths outside it), `absPath` where it lives on this machine. */
export interface OutputRoot {
  readonly name: string;
  readonly absPath: string;
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

export interface SaveRequest {
  readonly key: string;
  readonly package: string;
  readonly version: string;
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  readonly roots: readonly OutputRoot[];
  readonly keyManifest?: unknown;
}

export interface SaveResult {
  readonly entry: EntryMeta;
  /** False when the key was already in the store (nothing written). */
  readonly created: boolean;
  readonly newBlobs: number;
  /** Compressed bytes newly written to blobs/. */
  readonly newBytes: number;
}

export interface RestoreResult {
  readonly files: number;
  readonly bytes: number;
}

export interface RestoreOptions {
  /** Set file mtimes to the saved ones (for make-style incremental builds). */
  readonly mtimes?: boolean;
}
