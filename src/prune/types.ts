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
