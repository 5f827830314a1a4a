/**
 * Post step (or the save sub-action): store what the job built in the local store, then upload
 * each entry to the runner cache as one pack. In post, everything comes from main's state; the
 * save sub-action reads its inputs and takes the key explicitly or computes it as main would.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import { errorMessage, InputError } from '../errors.js';
import {
  habitWarnings,
  Inputs,
  readConfig,
  readJobStatus,
  type Config,
  type JobStatus,
} from '../inputs.js';
import { fallbackOnlyKey, logKey } from '../key/index.js';
import { openBucket, type BucketTier } from '../remote/bucket.js';
import { layerKey, openRemote, type RemoteTier } from '../remote/index.js';
import { Timer, writeSaveSummary, type SaveReport } from '../report.js';
import { formatBytes } from '../util/bytes.js';
import { loadState, type MainState } from '../state.js';
import type { LocalStore, SaveResult, SaveStats } from '../store/index.js';
import type { OutputRoot } from '../store/types.js';
import { sha256 } from '../util/bytes.js';
import { exists } from '../util/fsx.js';
import { closeStore, handlePhaseError, isStepStore, makeWorkDir, openStore } from './common.js';
import { carriedBlobs, carriedFrames, dropCarry, LAYER_MAX_FRACTION, type Carry } from './carry.js';
import { planPackages } from './packages.js';
import { prunePostStep, renderPruneSummary } from '../prune/post.js';

/** One package to save. */
interface SaveItem {
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly platform: string;
  readonly roots: readonly OutputRoot[];
  readonly key: string;
  readonly hash: string;
  /** The entry main restored from, when it was a fallback: the basis of an incremental save. */
  readonly basis?: string;
  readonly keyManifest?: unknown;
  /** The job failed: saved under a key no run computes, so only a fallback restores it. */
  readonly fallbackOnly?: boolean;
  /** What main kept for an incremental runner-cache save (carry.ts). */
  readonly carry?: Carry;
}

interface SavePlan {
  readonly config: Config;
  readonly items: readonly SaveItem[];
  /** Keys main restored or this step saves: never pruned by this job. */
  readonly pinned: readonly string[];
  /** The step store main kept (MainState.stepStore). */
  readonly stepStore?: string | undefined;
}

/**
 * The save policy after the build: with 'on-success' a failed job saves nothing (its post runs
 * only when another clyde-cache step of the job has save: always, which lets every post run);
 * with 'always' it saves, but where only a fallback can find it (fallbackOnlyKey): outputs of a
 * failed build may be partial, and an exact hit would skip the build that makes them whole.
 */
function jobFailed(status: JobStatus): boolean {
  return status === 'failure' || status === 'cancelled';
}

/** A save item moved to its fallback-only key, said once in the log. */
function asFallbackOnly(item: SaveItem, prefix: string, status: JobStatus): SaveItem {
  const moved = fallbackOnlyKey(prefix, item.hash);
  core.info(
    `The job's status is ${status}: saving ${item.name} as ${moved.key}, which only a fallback ` +
      `restores (never an exact hit for ${item.key}, so the next run builds).`,
  );
  return { ...item, key: moved.key, hash: moved.hash, fallbackOnly: true };
}

function fromState(state: MainState, status: JobStatus): SavePlan | string {
  if (state.config.save === 'never') return "'save' is never";
  if (jobFailed(status) && state.config.save === 'on-success') {
    return `the job's status is ${status} and 'save' is on-success`;
  }
  if (state.packages.length === 0) return 'main computed no key';
  const items: SaveItem[] = [];
  for (const p of state.packages) {
    if (p.exactHit) {
      core.info(`Not saving ${p.name}: exact hit on ${p.key} (${p.tier}); nothing new to save.`);
      continue;
    }
    const item: SaveItem = {
      name: p.name,
      version: p.version,
      variant: p.variant,
      platform: state.config.platform,
      roots: p.roots,
      key: p.key,
      hash: p.hash,
      ...(p.matchedKey ? { basis: p.matchedKey } : {}),
      keyManifest: p.keyManifest,
      ...(p.carry ? { carry: p.carry } : {}),
    };
    items.push(jobFailed(status) ? asFallbackOnly(item, p.prefix, status) : item);
  }
  const pinned = state.packages.flatMap((p) => (p.matchedKey ? [p.key, p.matchedKey] : [p.key]));
  return {
    config: state.config,
    items,
    pinned: [...pinned, ...items.map((i) => i.key)],
    stepStore: state.stepStore,
  };
}

async function fromInputs(timer: Timer, status: JobStatus): Promise<SavePlan | string> {
  const config = readConfig('save');
  for (const w of habitWarnings('save', config)) core.warning(w);
  if (config.save === 'never') return "'save' is never";
  if (config.key !== undefined) {
    if (config.packages) {
      throw new InputError(
        Inputs.Key,
        'cannot be given with packages; each package has its own key.',
      );
    }
    const item: SaveItem = {
      name: config.name,
      version: config.version,
      variant: config.variant,
      platform: config.platform,
      roots: config.paths,
      key: config.key,
      hash: sha256(config.key),
    };
    if (!jobFailed(status)) return { config, items: [item], pinned: [config.key] };
    // A key of the form <prefix><64 hex> (a clyde key) has a fallback-only form; others do not.
    const m = /^(.*-)([0-9a-f]{64})$/.exec(config.key);
    if (!m)
      return `the job's status is ${status}, and the key '${config.key}' has no fallback-only form`;
    const moved = asFallbackOnly({ ...item, hash: m[2] ?? '' }, m[1] ?? '', status);
    return { config, items: [moved], pinned: [moved.key] };
  }
  const plans = await timer.time('key', () => planPackages(config));
  for (const p of plans) logKey(p.key);
  const items = plans.map((p) => {
    const item: SaveItem = {
      name: p.name,
      version: p.version,
      variant: p.variant,
      platform: config.platform,
      roots: p.roots,
      key: p.key.key,
      hash: p.key.hash,
      keyManifest: p.key.manifest,
    };
    return jobFailed(status) ? asFallbackOnly(item, p.key.prefix, status) : item;
  });
  return { config, items, pinned: items.map((i) => i.key) };
}

export async function runSave(): Promise<void> {
  const timer = new Timer();
  const notes: string[] = [];
  let plan: SavePlan | string;
  try {
    const status = readJobStatus();
    const state = await loadState();
    plan = state ? fromState(state, status) : await fromInputs(timer, status);
  } catch (err) {
    handlePhaseError('Preparing the save', err, notes);
    return;
  }
  if (typeof plan === 'string') {
    core.info(`Not saving: ${plan}.`);
    return;
  }
  if (plan.items.length === 0 && !plan.config.local) {
    // Every package hit exactly and no store is kept (nothing to prune): no store to open.
    await writeSaveSummary([], timer.timings, notes);
    return;
  }

  const workDir = await makeWorkDir();
  const reports: SaveReport[] = [];
  const pruneSummary: string[] = [];
  let store: LocalStore | undefined;
  try {
    const opened = await timer.time('open', () => openStore(plan.config, notes, plan.stepStore));
    store = opened;
    // Prune before saving (the seeds' order), never touching what this job restored or saves.
    if (!isStepStore(opened)) {
      const pruned = await timer.time('prune', () =>
        prunePostStep(opened, plan.config.prune, [...plan.pinned]),
      );
      pruneSummary.push(...renderPruneSummary(pruned));
    }
    const remote = openRemote(
      plan.config.remote,
      plan.config.remoteTimeoutMs,
      plan.config.crossOs === true,
    );
    const bucket = openBucket(plan.config.bucket, plan.config.remoteTimeoutMs);
    for (const item of plan.items) {
      const report = await saveOne(plan.config, item, opened, remote, timer, notes);
      reports.push(
        bucket ? await saveToBucket(bucket, item, opened, report, workDir, timer, notes) : report,
      );
    }
  } catch (err) {
    handlePhaseError('Saving', err, notes);
  } finally {
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    await closeStore(store);
    if (typeof plan !== 'string') for (const i of plan.items) await dropCarry(i.carry);
  }
  await writeSaveSummary(reports, timer.timings, notes, pruneSummary);
}

async function saveOne(
  config: Config,
  item: SaveItem,
  store: LocalStore,
  remote: RemoteTier,
  timer: Timer,
  notes: string[],
): Promise<SaveReport> {
  const report: { -readonly [K in keyof SaveReport]: SaveReport[K] } = {
    name: item.name,
    key: item.key,
    ...(item.fallbackOnly ? { fallbackOnly: true } : {}),
    local: 'not saved',
    remote: 'not saved',
    files: 0,
    bytes: 0,
    newBytes: 0,
    uploadedBytes: 0,
  };
  const present = await Promise.all(item.roots.map((r) => exists(r.absPath)));
  if (!present.some(Boolean)) {
    const msg = `Not saving ${item.key}: none of the paths exist (${item.roots.map((r) => r.name).join(', ')}).`;
    core.warning(msg);
    report.local = report.remote = 'nothing to save';
    return report;
  }

  let saved: SaveResult | undefined;
  const carry = item.carry;
  if (carry?.lent !== undefined && isStepStore(store)) {
    // The entry main restored is an entry of the step store main kept (carry.ts), so the save
    // reads only what changed; its blobs are read in place from the carried packs again (which
    // outlive the store: dropCarry).
    await carriedFrames(carry.lent, carry.packs ?? [])
      .then((frames) => store.lend(frames))
      .catch((err: unknown) => {
        core.info(`Not building on the restored entry (${errorMessage(err)}): saving it whole.`);
      });
  }
  try {
    let stats: SaveStats | undefined;
    const r = await timer.time('local', () =>
      store.save({
        key: item.key,
        package: item.name,
        version: item.version,
        hash: item.hash,
        platform: item.platform,
        variant: item.variant,
        roots: item.roots,
        keyManifest: item.keyManifest,
        ...(item.basis ? { basis: item.basis } : {}),
        workspace: config.workspace,
        keepOutsideLinks: config.keepOutsideLinks,
        onStats: (s) => (stats = s),
      }),
    );
    saved = r;
    // What the save left out (symlinks leading outside the workspace, special files).
    notes.push(...(r.warnings ?? []));
    const kept = !isStepStore(store);
    report.local = !kept ? "off (the 'local' input)" : r.created ? 'saved' : 'already present';
    report.files = r.entry.files;
    report.bytes = r.entry.sizeBytes;
    report.newBytes = r.newBytes;
    // (Files the stat cache vouched for, unchanged since they were saved or restored, are not read.)
    const read = stats ? `, ${stats.read} read` : '';
    core.info(
      `${kept ? `Local store: ${report.local}` : 'Packed'} ${item.key} (${r.entry.files} files${read}; ` +
        `${r.newBlobs} new blob${r.newBlobs === 1 ? '' : 's'}, ${formatBytes(r.newBytes)} written).`,
    );
  } catch (err) {
    handlePhaseError(`Saving ${item.name} to the local store`, err, notes);
  }

  if (!saved) {
    report.remote = 'skipped (nothing stored locally to upload)';
  } else if (!remote.writable) {
    report.remote = `off: ${remote.disabledReason ?? 'ACTIONS_CACHE_MODE does not allow writes'}`;
  } else {
    report.remote = await timer.time('upload', async () => {
      const there = await timer.time('lookup', () => remote.exists(item.key));
      if (there === undefined) return `off: ${remote.disabledReason ?? 'unavailable'}`;
      if (there) return 'already present';
      try {
        const layer = carry ? await layerOf(store, item.key, carry) : undefined;
        // The pack is sent as it is read from the store: no copy of it is written first. A
        // store made for this step wrote every blob from content it hashed: no re-check, and
        // the entry it just made is not read back.
        const pack =
          isStepStore(store) && saved?.made
            ? await store.savedPackStream(saved, layer?.omit)
            : await store.packStream(item.key, {
                verify: true,
                ...(layer ? { omit: layer.omit } : {}),
              });
        const up = await remote.upload(pack, layer?.remoteKey ?? item.key);
        if (up.status !== 'saved') return up.status;
        report.uploadedBytes = up.bytes;
        return layer ? `saved (a layer over ${carry?.base})` : 'saved';
      } catch (err) {
        // One warning with the reason, repeated as a line under the summary's table.
        handlePhaseError(`Saving ${item.name} to the runner cache failed`, err, notes);
        return 'failed';
      }
    });
    core.info(`Runner cache: ${report.remote} ${item.key}.`);
  }
  return report;
}

/**
 * How to save `key` as a layer over the carried base (the blobs to leave out, the key to save
 * it under), or undefined when a full entry is better: a layer above LAYER_MAX_FRACTION of its
 * base's bytes (so a chain never grows: every layer's base is a full entry), or one whose key
 * would be too long for the service.
 */
async function layerOf(
  store: LocalStore,
  key: string,
  carry: Carry,
): Promise<{ omit: ReadonlySet<string>; remoteKey: string } | undefined> {
  const remoteKey = layerKey(key, carry.base);
  if (remoteKey === undefined || key === carry.base) return undefined;
  const omit = await carriedBlobs(carry);
  // Decided from the index before any pack is read: a layer too large is never sent.
  const blobBytes = await store.storedBytes(key, omit);
  if (blobBytes > carry.baseBytes * LAYER_MAX_FRACTION) {
    core.info(
      `A layer of ${key} would carry ${formatBytes(blobBytes)}, more than ${LAYER_MAX_FRACTION * 100}% ` +
        `of its base's ${formatBytes(carry.baseBytes)}: saving a full entry.`,
    );
    return undefined;
  }
  core.info(`Saving ${key} as a layer over ${carry.base}: ${formatBytes(blobBytes)} of new blobs.`);
  return { omit, remoteKey };
}

/**
 * The bucket tier's save, after the local store's (whose entry it uploads, missing blobs only).
 * Its own column of the report; a failure is one warning and a skipped upload.
 */
async function saveToBucket(
  bucket: BucketTier,
  item: SaveItem,
  store: LocalStore,
  report: SaveReport,
  workDir: string,
  timer: Timer,
  notes: string[],
): Promise<SaveReport> {
  if (report.local === 'not saved' || report.local === 'nothing to save') {
    return { ...report, bucket: 'skipped (nothing stored locally to upload)' };
  }
  if (bucket.disabledReason) return { ...report, bucket: `off: ${bucket.disabledReason}` };
  let outcome: string;
  let uploaded = 0;
  try {
    const r = await timer.time('bucket', () => bucket.save(store, item.key, item.basis, workDir));
    uploaded = r.uploadedBytes;
    outcome =
      r.status === 'saved'
        ? `saved (${r.uploadedBlobs} of ${r.blobs} blobs uploaded, ${formatBytes(r.uploadedBytes)})`
        : r.status;
  } catch (err) {
    handlePhaseError(`Saving ${item.name} to the bucket failed`, err, notes);
    outcome = 'failed';
  }
  core.info(`Bucket ${bucket.where}: ${outcome} ${item.key}.`);
  return { ...report, bucket: outcome, uploadedBytes: report.uploadedBytes + uploaded };
}
