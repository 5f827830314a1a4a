/**
 * Prune in post: when cleanup-interval has passed since the last prune (a marker in the store),
 * plan over a snapshot of the local store and apply the plan, never touching the keys this job
 * restored or is saving. Never throws: every failure is one warning, and post carries on.
 */
import * as core from '@actions/core';
import { errorMessage } from '../errors.js';
import type { PruneConfig } from '../inputs.js';
import { formatBytes } from '../util/bytes.js';
import { executePlan, type ExecuteResult, type PruneTarget } from './execute.js';
import { limitsOf, planPrune, pruneDue } from './policy.js';
import { pruneWasQuiet, renderPlanLines } from './summary.js';
import type { PrunePlan } from './types.js';

/** The marker (epoch ms) of the last prune, kept in the store. */
export const PRUNE_MARKER = 'last-prune';

/** The local store as post's prune sees it (LocalStore satisfies it). */
export interface PruneStore extends PruneTarget {
  readMarker(name: string): Promise<number | null | undefined>;
  writeMarker(name: string, epochMs: number): Promise<void>;
  /** What a store of an older layout left (LocalStore.sweepOldLayout): none of it is read. */
  sweepOldLayout(): Promise<{ files: number; bytes: number }>;
}

export interface PruneReport {
  readonly status: 'pruned' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  readonly detail?: string;
  readonly plan?: PrunePlan;
  readonly result?: ExecuteResult;
  /** Files of an older store layout removed. */
  readonly oldLayout?: { readonly files: number; readonly bytes: number };
}

export async function prunePostStep(
  store: PruneStore,
  prune: PruneConfig,
  pinnedKeys: string[],
  now: number = Date.now(),
): Promise<PruneReport> {
  let stage = 'reading the last prune time';
  try {
    const last = (await store.readMarker(PRUNE_MARKER)) ?? undefined;
    if (!pruneDue(last, prune.cleanupIntervalMs, now)) {
      const detail = `last prune ${new Date(last ?? 0).toISOString()}, cleanup-interval not yet passed`;
      core.info(`Prune: skipped (${detail}).`);
      return { status: 'skipped', detail };
    }
    stage = 'taking a snapshot of the store';
    const snapshot = await store.snapshot();
    const plan = planPrune(snapshot, limitsOf(prune, pinnedKeys), now);
    stage = 'deleting';
    const result = await executePlan(store, plan, { label: 'Prune' });
    stage = 'removing the files of an older store layout';
    const oldLayout = await store.sweepOldLayout();
    if (oldLayout.files > 0) {
      core.info(
        `Prune: ${oldLayout.files} file(s) of an older store layout removed (${formatBytes(oldLayout.bytes)} freed).`,
      );
    }
    stage = 'recording the prune time';
    await store.writeMarker(PRUNE_MARKER, now);
    core.info(
      `Prune: ${result.deleted.length} of ${plan.entriesBefore} entries deleted, ` +
        `${formatBytes(plan.bytesBefore)} -> ${formatBytes(plan.bytesAfter)}` +
        (result.failed.length > 0 ? ` (${result.failed.length} could not be deleted)` : '') +
        '.',
    );
    return { status: 'pruned', plan, result, ...(oldLayout.files > 0 ? { oldLayout } : {}) };
  } catch (err) {
    const detail = `${stage}: ${errorMessage(err)}`;
    core.warning(`Prune of the local store failed while ${detail}`);
    return { status: 'failed', detail };
  }
}

/** Job summary lines: what was pruned and why (or why nothing was). */
export function renderPruneSummary(report: PruneReport): string[] {
  if (report.status === 'skipped') return [];
  if (report.plan && pruneWasQuiet(report.plan, report.result)) return [];
  if (report.status !== 'pruned' || report.plan === undefined) {
    return [`### clyde-cache prune`, '', `Prune ${report.status}: ${report.detail ?? ''}`.trim()];
  }
  return renderPlanLines('clyde-cache prune', report.plan, report.result);
}
