/**
 * Rendering of a prune plan for the job summary (markdown lines), shared by post and
 * the gc sub-action.
 */
import { formatBytes } from '../util/bytes.js';
import type { ExecuteResult } from './execute.js';
import { totalsByReason } from './policy.js';
import type { PrunePlan } from './types.js';

/** Entries listed one by one in the summary; the rest are counted. */
const LISTED = 50;

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * True when a prune changed nothing and kept nothing a rule wanted gone: post then shows no
 * prune section at all (a table of unchanged numbers in every job is noise).
 */
export function pruneWasQuiet(
  plan: PrunePlan,
  result?: Pick<ExecuteResult, 'dryRun' | 'failed'>,
): boolean {
  return (
    plan.deletions.length === 0 &&
    plan.kept.length === 0 &&
    (result?.failed.length ?? 0) === 0 &&
    (plan.maxSizeBytes === null || plan.budgetMet)
  );
}

/**
 * Markdown: a table of entries and bytes before, deleted (by reason) and after, then the deleted
 * and kept entries with their reasons. On a dry run the "after" row is what the plan would leave.
 */
export function renderPlanLines(
  title: string,
  plan: PrunePlan,
  result?: Pick<ExecuteResult, 'dryRun' | 'failed'>,
): string[] {
  const dry = result?.dryRun ?? false;
  const failed = result?.failed ?? [];
  const lines = [
    `### ${cell(title)}${dry ? ' (dry run: nothing deleted)' : ''}`,
    '',
    '| | entries | bytes |',
    '|---|---:|---:|',
    `| before | ${plan.entriesBefore} | ${formatBytes(plan.bytesBefore)} |`,
  ];
  for (const t of totalsByReason(plan)) {
    lines.push(
      `| ${dry ? 'would delete' : 'deleted'}: ${t.reason} | ${t.entries} | ${formatBytes(t.bytes)} |`,
    );
  }
  if (failed.length > 0) lines.push(`| not deleted (errors) | ${failed.length} | |`);
  const failedBytes = failed.reduce((a, f) => a + f.deletion.freedBytes, 0);
  lines.push(
    `| after | ${plan.entriesAfter + failed.length} | ${formatBytes(plan.bytesAfter + failedBytes)} |`,
  );
  if (plan.maxSizeBytes !== null) {
    lines.push(
      '',
      `Budget ${formatBytes(plan.maxSizeBytes)}: ${plan.budgetMet ? 'met' : 'not met (the rest is kept by keep-versions, pinning or references)'}.`,
    );
  }
  if (plan.deletions.length > 0) {
    lines.push(
      '',
      `<details><summary>${dry ? 'Would delete' : 'Deleted'} (${plan.deletions.length})</summary>`,
      '',
    );
    for (const d of plan.deletions.slice(0, LISTED)) {
      lines.push(
        `- \`${cell(d.key)}\`${d.ref !== undefined ? ` on \`${cell(d.ref)}\`` : ''}: ${d.reason}, ${formatBytes(d.freedBytes)}`,
      );
    }
    if (plan.deletions.length > LISTED)
      lines.push(`- ... and ${plan.deletions.length - LISTED} more`);
    lines.push('', '</details>');
  }
  if (plan.kept.length > 0) {
    lines.push(
      '',
      `<details><summary>Kept although a rule wanted them gone (${plan.kept.length})</summary>`,
      '',
    );
    for (const k of plan.kept.slice(0, LISTED)) {
      lines.push(
        `- \`${cell(k.key)}\`${k.ref !== undefined ? ` on \`${cell(k.ref)}\`` : ''}: ${k.wanted}, kept by ${k.keptBy}`,
      );
    }
    if (plan.kept.length > LISTED) lines.push(`- ... and ${plan.kept.length - LISTED} more`);
    lines.push('', '</details>');
  }
  return lines;
}
