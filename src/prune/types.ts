/**
 * The shapes the prune policy plans from and plans to. Plain data: a plan can be printed,
 * serialised as the gc `plan` output, and compared in tests.
 */
import type { SnapshotEntry } from '../store/types.js';

/** Why the policy deletes an entry (one reason per entry: the first rule that wanted it). */
export type DeleteReason = 'expired' | 'max-age' | 'closed-pr' | 'superseded' | 'size-budget';
/** Why an entry a rule wanted to delete stays. */
export type KeepReason = 'pinned' | 'keep-versions' | 'referenced' | 'base-of-layer';

export const DELETE_REASONS: readonly DeleteReason[] = [
  'expired',
  'max-age',
  'closed-pr',
  'superseded',
  'size-budget',
];

export type PullRequestState = 'open' | 'closed' | 'merged';

/** What only a runner-cache entry has. */
export interface RemoteInfo {
  /** The cache id (what DELETE .../actions/caches/{id} takes). */
  readonly id: number;
  /** The git ref the entry belongs to (its scope), e.g. refs/heads/main, refs/pull/7/merge. */
  readonly ref: string;
  /** State of the pull request of a refs/pull/<n>/... ref, when it could be looked up. */
  readonly pr?: { readonly number: number; readonly state: PullRequestState };
  /**
   * The key does not parse as a clyde key (only present with include-foreign-keys): no package,
   * so neither keep-versions nor superseded applies to it.
   */
  readonly foreign?: boolean;
  /** A layer (an incremental save): the key of the full entry it needs, kept while it lives. */
  readonly base?: string;
}

/** One entry as the policy sees it: a store SnapshotEntry, plus RemoteInfo for the runner cache. */
export interface PruneEntry extends SnapshotEntry {
  readonly remote?: RemoteInfo;
}

export interface PruneSnapshot {
  readonly entries: readonly PruneEntry[];
  /**
   * digest -> stored bytes. Present for the content-addressed local store: an entry then costs
   * the blobs no other remaining entry references. Absent (runner cache): an entry costs its
   * own sizeBytes.
   */
  readonly blobSizes?: ReadonlyMap<string, number>;
  /** Bytes the policy counts against the budget but may not delete (e.g. foreign caches). */
  readonly fixedBytes?: number;
}

export interface PruneLimits {
  readonly maxSizeBytes: number | null;
  readonly maxAgeMs: number | null;
  /** TTL of the `content` class: time since last access. */
  readonly contentTtlMs: number | null;
  readonly keepVersions: number;
  /** Keys this job restored or is saving: never deleted. */
  readonly pinnedKeys?: readonly string[];
}

export interface PlannedDeletion {
  /** What the target deletes by: the key (local store) or the cache id (runner cache). */
  readonly handle: string;
  readonly key: string;
  readonly reason: DeleteReason;
  /** Bytes this deletion frees (blobs whose last holder it is; for the runner cache, its size). */
  readonly freedBytes: number;
  readonly sizeBytes: number;
  readonly ref?: string;
}

export interface KeptEntry {
  readonly key: string;
  readonly ref?: string;
  /** The rule that wanted the entry gone. */
  readonly wanted: DeleteReason;
  readonly keptBy: KeepReason;
}

export interface PrunePlan {
  readonly now: number;
  readonly entriesBefore: number;
  readonly bytesBefore: number;
  readonly entriesAfter: number;
  readonly bytesAfter: number;
  /** The size budget, and whether the plan gets under it. */
  readonly maxSizeBytes: number | null;
  readonly budgetMet: boolean;
  /** In the order the policy decided them: time rules by key, then LRU order. */
  readonly deletions: readonly PlannedDeletion[];
  readonly kept: readonly KeptEntry[];
}

/**
 * Why the store deletes something no entry rule of `planPrune` covers (the verdicts of
 * policy.ts's housekeeping functions, carried out by the store's maintenance room).
 */
export type HousekeepingReason =
  /** An entry that needs a blob that is missing, or was corrupt and is deleted. */
  | 'missing-blob'
  /** An entry whose meta.json or artifact is unreadable, invalid or disagrees with the index. */
  | 'bad-entry'
  /** A blob whose content does not match its digest. */
  | 'corrupt-blob'
  /** An entry directory the index does not list (a save killed before indexing). */
  | 'stray-dir'
  /** A blob no entry references, older than the orphan age (a running save may want younger). */
  | 'orphan-blob'
  /** What an older store left (old-layout/, unpacked/); this version reads none of it. */
  | 'old-layout';

/** One thing the store is to delete, and why. */
export interface Verdict {
  /** A key, an entry directory, a digest or a file name, by the function that gave it. */
  readonly target: string;
  readonly reason: HousekeepingReason;
  /** Bytes the deletion frees, where the facts tell. */
  readonly bytes: number;
}

/** An entry as the housekeeping verdicts see it. */
export interface EntryFacts {
  readonly key: string;
  /** `<package>/<version>/<hash>`. */
  readonly dir: string;
  readonly blobs: readonly string[];
}

/** What `verify` found, and what is on disk: the facts `planRepair` decides from. */
export interface RepairFacts {
  readonly entries: readonly EntryFacts[];
  readonly badEntries: readonly string[];
  readonly missingBlobs: readonly string[];
  readonly corruptBlobs: readonly string[];
  /** Size on disk of every blob an entry references (undefined: not there). */
  readonly blobSizes: ReadonlyMap<string, number | undefined>;
  /** Every entry directory on disk. */
  readonly entryDirs: readonly string[];
}

export interface RepairPlan {
  /** Entries that stay, with the sizes of their blobs (the index is rebuilt from them). */
  readonly keep: readonly EntryFacts[];
  readonly keptBlobSizes: ReadonlyMap<string, number>;
  /** Blobs deleted first (corrupt ones), entries dropped, directories no entry keeps. */
  readonly blobs: readonly Verdict[];
  readonly entries: readonly Verdict[];
  readonly dirs: readonly Verdict[];
}
