/**
 * The prune executor: applies a plan made by policy.ts through a small target interface, or only
 * prints it on a dry run. Each deletion is logged with its reason; a failure to delete one entry
 * is a warning, never a failed step (only a configuration error, such as a token that may not
 * delete, is rethrown).
 */
import * as core from '@actions/core';
import { errorMessage, isInputError } from '../errors.js';
import type { PlannedDeletion, PrunePlan, PruneSnapshot } from './types.js';
import { formatBytes } from '../util/bytes.js';

/** What the executor deletes through; LocalStore satisfies it, and so does the REST target. */
export interface PruneTarget {
  /** Every entry and (local store) every blob's size. */
  snapshot(): Promise<PruneSnapshot>;
  /** Deletes by handle (key in the local store, cache id in the runner cache). */
  removeMany(handles: readonly string[]): Promise<{ removed: string[]; freedBytes: number }>;
}

export interface ExecuteOptions {
  readonly dryRun?: boolean;
  /** Name of the target in log lines, e.g. 'local store', 'runner cache'. */
  readonly label?: string;
  /** Handles per removeMany call (the local store locks once per call). */
  readonly batchSize?: number;
  /** Where lines go; default core.info. */
  readonly log?: (line: string) => void;
  /** Where per-entry failures go; default core.warning. */
  readonly warn?: (line: string) => void;
}

export interface ExecuteResult {
  readonly dryRun: boolean;
  /** Deletions that happened (on a dry run: none). */
  readonly deleted: readonly PlannedDeletion[];
  readonly failed: readonly { readonly deletion: PlannedDeletion; readonly error: string }[];
  /** Bytes the target reports freed (0 on a dry run). */
  readonly freedBytes: number;
}

export function describeDeletion(d: PlannedDeletion): string {
  const where = d.ref !== undefined ? ` on ${d.ref}` : '';
  return `${d.key}${where} (${d.reason}, ${formatBytes(d.freedBytes)})`;
}

export async function executePlan(
  target: Pick<PruneTarget, 'removeMany'>,
  plan: PrunePlan,
  opts: ExecuteOptions = {},
): Promise<ExecuteResult> {
  const log = opts.log ?? ((l: string) => core.info(l));
  const warn = opts.warn ?? ((l: string) => core.warning(l));
  const label = opts.label ?? 'cache';
  const dryRun = opts.dryRun ?? false;
  if (dryRun) {
    for (const d of plan.deletions) log(`[dry run] ${label}: would delete ${describeDeletion(d)}`);
    return { dryRun, deleted: [], failed: [], freedBytes: 0 };
  }

  const deleted: PlannedDeletion[] = [];
  const failed: { deletion: PlannedDeletion; error: string }[] = [];
  let freedBytes = 0;
  const batchSize = Math.max(1, opts.batchSize ?? 100);
  const fail = (d: PlannedDeletion, err: unknown): void => {
    const error = errorMessage(err);
    failed.push({ deletion: d, error });
    warn(`${label}: could not delete ${describeDeletion(d)}: ${error}`);
  };
  const apply = async (batch: readonly PlannedDeletion[]): Promise<void> => {
    const r = await target.removeMany(batch.map((d) => d.handle));
    freedBytes += r.freedBytes;
    const removed = new Set(r.removed);
    for (const d of batch) {
      if (removed.has(d.handle)) {
        deleted.push(d);
        log(`${label}: deleted ${describeDeletion(d)}`);
      } else {
        fail(d, new Error('the target did not remove it'));
      }
    }
  };

  for (let start = 0; start < plan.deletions.length; start += batchSize) {
    const batch = plan.deletions.slice(start, start + batchSize);
    try {
      await apply(batch);
    } catch (err) {
      if (isInputError(err)) throw err;
      if (batch.length === 1) {
        fail(batch[0] as PlannedDeletion, err);
        continue;
      }
      // One bad entry must not cost the rest of the batch: retry one at a time.
      for (const d of batch) {
        try {
          await apply([d]);
        } catch (err2) {
          if (isInputError(err2)) throw err2;
          fail(d, err2);
        }
      }
    }
  }
  return { dryRun, deleted, failed, freedBytes };
}
