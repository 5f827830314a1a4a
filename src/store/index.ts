/** The local content-addressed store: see local-store.ts for the layout and guarantees. */
export { LocalStore, type LocalStoreOptions } from './local-store.js';
export type { LentFrame } from './blobs.js';
export { BLOB_NAME } from './blob-layout.js';
export type { PackBase, PackFile } from './pack-room.js';
export type { PackStream } from './pack.js';
export { BACKEND_ENV, nativeBindingPath, type Backend } from './pool.js';
export type {
  OutputRoot,
  EntryMeta,
  SaveRequest,
  SaveResult,
  SaveStats,
  RestoreResult,
  RestoreOptions,
  RemoveManyResult,
  SnapshotEntry,
  StoreSnapshot,
  StoreStats,
  VerifyOptions,
  VerifyReport,
} from './types.js';
