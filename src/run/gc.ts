/**
 * The gc sub-action, for scheduled workflows: the prune policy over (1) the local store of a
 * self-hosted runner (then verified, and repaired: checkLocalStore) and (2) the repository's
 * runner caches through the REST API. Each target:
 * snapshot, plan (pure), then execute or, on a dry run, print the plan. Outputs: deleted-count,
 * deleted-bytes, plan (JSON); the job summary gets a table per target.
 */
import * as core from '@actions/core';
import { isInputError } from '../errors.js';
import { readGcConfig, type GcConfig } from '../inputs.js';
import { bucketPruneTarget } from '../prune/bucket.js';
import { bucketProblem, openBucketClient, type BucketConfig } from '../remote/bucket-client.js';
import { BucketLayout } from '../remote/bucket.js';
import { deadline, DeadlineError } from '../remote/deadline.js';
import { executePlan, type ExecuteResult, type PruneTarget } from '../prune/execute.js';
import { formatBytes } from '../util/bytes.js';
import { limitsOf, planPrune } from '../prune/policy.js';
import { remotePruneTarget } from '../prune/remote.js';
import { renderPlanLines } from '../prune/summary.js';
import type { PrunePlan } from '../prune/types.js';
import { openCacheApi } from '../remote/rest.js';
import { LocalStore } from '../store/index.js';
import { handlePhaseError } from './common.js';

export const GcOutputs = {
  DeletedCount: 'deleted-count',
  DeletedBytes: 'deleted-bytes',
  Plan: 'plan',
} as const;

interface TargetRun {
  readonly name: 'local' | 'remote' | 'bucket';
  readonly title: string;
  readonly plan: PrunePlan;
  readonly result: ExecuteResult;
}

/** Snapshot, plan, execute (or print) one target. */
async function gcTarget(
  name: TargetRun['name'],
  title: string,
  target: PruneTarget,
  config: GcConfig,
  now: number,
  batchSize: number,
): Promise<TargetRun> {
  const snapshot = await target.snapshot();
  const plan = planPrune(snapshot, limitsOf(config.prune), now);
  core.info(
    `${title}: ${plan.entriesBefore} entries, ${formatBytes(plan.bytesBefore)}; the plan deletes ` +
      `${plan.deletions.length} (${formatBytes(plan.bytesBefore - plan.bytesAfter)}).`,
  );
  const result = await executePlan(target, plan, {
    dryRun: config.dryRun,
    label: title,
    batchSize,
  });
  return { name, title, plan, result };
}

export async function runGc(now: number = Date.now()): Promise<void> {
  let config: GcConfig;
  try {
    config = readGcConfig();
  } catch (err) {
    handlePhaseError('Inputs', err);
    return;
  }

  const runs: TargetRun[] = [];
  const notes: string[] = [];
  let failed = false;

  if (config.local) {
    try {
      const store = await LocalStore.open(config.localCacheDir);
      const title = `Local store ${config.localCacheDir}`;
      runs.push(await gcTarget('local', title, store, config, now, 100));
      await checkLocalStore(store, title, config.dryRun, notes);
    } catch (err) {
      failed ||= handlePhaseError('GC of the local store', err, notes);
    }
  }
  if (config.remote && !failed) {
    try {
      const api = openCacheApi({
        token: config.token,
        apiUrl: config.apiUrl,
        repository: config.repository,
      });
      const target = remotePruneTarget(api, {
        keyPrefix: config.keyPrefix,
        includeForeignKeys: config.includeForeignKeys,
      });
      runs.push(
        await gcTarget('remote', `Runner caches of ${config.repository}`, target, config, now, 1),
      );
    } catch (err) {
      failed ||= handlePhaseError('GC of the runner caches', err, notes);
    }
  }

  let sweptBytes = 0;
  if (config.bucket && !failed) {
    const r = await gcBucket(config, config.bucket, now, runs, notes);
    failed ||= r.failed;
    sweptBytes = r.sweptBytes;
  }

  const deleted = runs.flatMap((r) => r.result.deleted);
  core.setOutput(GcOutputs.DeletedCount, String(deleted.length));
  core.setOutput(
    GcOutputs.DeletedBytes,
    // The bucket's entry deletions free their blobs in the next run's sweep: counted then.
    String(
      runs
        .filter((r) => r.name !== 'bucket')
        .flatMap((r) => r.result.deleted)
        .reduce((a, d) => a + d.freedBytes, 0) + sweptBytes,
    ),
  );
  core.setOutput(GcOutputs.Plan, gcPlanJson(config.dryRun, runs));
  core.info(
    config.dryRun
      ? `Dry run: ${runs.reduce((a, r) => a + r.plan.deletions.length, 0)} entries would be deleted; nothing was.`
      : `Deleted ${deleted.length} entries.`,
  );

  const lines = [`## clyde-cache gc${config.dryRun ? ' (dry run)' : ''}`, ''];
  for (const r of runs) lines.push(...renderPlanLines(r.title, r.plan, r.result), '');
  if (runs.length === 0) {
    lines.push('Nothing to collect: `local`, `remote` and `bucket` are off.');
  }
  for (const n of notes) lines.push(`> ${n.replace(/\r?\n/g, ' ')}`);
  try {
    await core.summary.addRaw(`${lines.join('\n')}\n`).write();
  } catch (err) {
    core.info(`Job summary not written: ${String(err)}`);
  }
}

/**
 * After the local store's prune: verify it (every entry readable and agreeing with the index,
 * every referenced blob on disk, every reference count right) and, unless this is a dry run,
 * repair what was found (damaged entries dropped, counts recounted) and collect what a killed
 * save or removal left: orphan blobs older than ten minutes (a save in flight writes its blobs
 * before it commits) and entry directories the index does not list, and what an older store
 * layout left. Then what the store holds.
 */
async function checkLocalStore(
  store: LocalStore,
  title: string,
  dryRun: boolean,
  notes: string[],
): Promise<void> {
  const report = await store.verify({ repair: !dryRun });
  const lines: string[] = [];
  if (!report.ok) {
    const shown = report.problems.slice(0, 5).join('; ');
    const more = report.problems.length > 5 ? `; and ${report.problems.length - 5} more` : '';
    lines.push(
      `${report.problems.length} problem(s) found, ${dryRun ? 'left for a run that is not dry' : 'repaired'}: ${shown}${more}`,
    );
  }
  const garbage = report.orphanBlobs.length + report.strayDirs.length;
  if (garbage > 0) {
    lines.push(
      `${report.orphanBlobs.length} blob(s) and ${report.strayDirs.length} entry directory(ies) ` +
        `no entry uses, ${dryRun ? 'left by the dry run' : 'removed (blobs younger than ten minutes kept)'}`,
    );
  }
  const old = await store.sweepOldLayout(dryRun);
  if (old.files > 0) {
    lines.push(
      `${old.files} file(s) of an older store layout (${formatBytes(old.bytes)}) ${dryRun ? 'left by the dry run' : 'removed'}`,
    );
  }
  const s = await store.stats();
  lines.push(
    `${s.entries} entries, ${s.blobs} blobs: ${formatBytes(s.storedBytes)} on disk for ` +
      `${formatBytes(s.logicalBytes)} of outputs (${s.spaceRatio.toFixed(1)}x)`,
  );
  for (const l of lines) {
    core.info(`${title}: ${l}.`);
    notes.push(`${title}: ${l}.`);
  }
}

/**
 * The bucket: entries through the policy, then the sweep of unreferenced blobs past the grace
 * period (prune/bucket.ts). Returns whether the step was failed (a configuration error) and
 * the bytes the sweep deleted (0 on a dry run).
 */
async function gcBucket(
  config: GcConfig,
  bucket: BucketConfig,
  now: number,
  runs: TargetRun[],
  notes: string[],
): Promise<{ failed: boolean; sweptBytes: number }> {
  const title = `Bucket s3://${bucket.name}/${bucket.prefix}`;
  try {
    const limit = deadline(BUCKET_GC_TIMEOUT_MS, 'the bucket gc');
    const api =
      config.remote && config.token
        ? openCacheApi({
            token: config.token,
            apiUrl: config.apiUrl,
            repository: config.repository,
          })
        : undefined;
    const target = bucketPruneTarget(
      openBucketClient(bucket),
      new BucketLayout(bucket.prefix),
      limit.signal,
      api ? (n) => api.pullRequestState(n) : undefined,
    );
    runs.push(await gcTarget('bucket', title, target, config, now, 100));
    const swept = await target.sweep(now, config.bucketGraceMs, config.dryRun);
    const line =
      `${config.dryRun ? 'would delete' : 'deleted'} ${swept.blobs} unreferenced blob(s), ` +
      `${formatBytes(swept.bytes)}; ${swept.young} unreferenced blob(s) younger than the grace period kept`;
    core.info(`${title}: ${line}.`);
    notes.push(`${title}: ${line}.`);
    return { failed: false, sweptBytes: config.dryRun ? 0 : swept.bytes };
  } catch (err) {
    const problem = err instanceof DeadlineError ? err : new Error(bucketProblem(err, bucket));
    const failed = handlePhaseError('GC of the bucket', isInputError(err) ? err : problem, notes);
    return { failed, sweptBytes: 0 };
  }
}

/** The bucket's listing, reads and deletions together. */
const BUCKET_GC_TIMEOUT_MS = 60 * 60_000;

/** The `plan` output: per target, the deletions and kept entries with their reasons. */
export function gcPlanJson(dryRun: boolean, runs: readonly TargetRun[]): string {
  return JSON.stringify({
    dryRun,
    targets: runs.map((r) => ({
      target: r.name,
      entriesBefore: r.plan.entriesBefore,
      bytesBefore: r.plan.bytesBefore,
      entriesAfter: r.plan.entriesAfter,
      bytesAfter: r.plan.bytesAfter,
      maxSizeBytes: r.plan.maxSizeBytes,
      budgetMet: r.plan.budgetMet,
      deletions: r.plan.deletions,
      kept: r.plan.kept,
      failed: r.result.failed.map((f) => ({ handle: f.deletion.handle, error: f.error })),
    })),
  });
}
