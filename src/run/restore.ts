/**
 * Main step: compute the keys, then restore each package in this order — local exact, remote
 * exact, local fallback, remote fallback, miss — explain every miss or fallback, and hand post
 * everything it needs in state.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import { errorMessage } from '../errors.js';
import { habitWarnings, readConfig, type Config } from '../inputs.js';
import {
  asKeyManifest,
  changedSources,
  explain,
  formatExplanation,
  logKey,
  type Explanation,
  type SourceChanges,
} from '../key/index.js';
import type { KeyManifest } from '../key/types.js';
import { openBucket, type BucketHit, type BucketTier } from '../remote/bucket.js';
import { openRemote, type Fetched, type RemoteHit, type RemoteTier } from '../remote/index.js';
import {
  setRestoreOutputs,
  Timer,
  writeRestoreSummary,
  type HitKind,
  type PackageOutcome,
} from '../report.js';
import { saveState, STATE_VERSION, type PackageState, type Tier } from '../state.js';
import type { EntryMeta, LocalStore, RestoreOptions } from '../store/index.js';
import {
  closeStore,
  handlePhaseError,
  isStepStore,
  keepStepStore,
  makeWorkDir,
  openStore,
  scratchRoot,
} from './common.js';
import { keepCarry, type Carry } from './carry.js';
import { markChangedSources } from './mtimes.js';
import { planPackages, type PackagePlan } from './packages.js';

/** Exported to the job's environment when save is 'always', read by action.yml's post-if. */
export const SAVE_ON_FAILURE_ENV = 'CLYDE_CACHE_SAVE_ON_FAILURE';

/**
 * Restored outputs do not keep their saved mtimes: a fresh checkout gives every source the
 * checkout time, newer than any saved output, and make would rebuild everything. They get the
 * restore time instead, and on a fallback the sources that differ from the matched entry's key
 * manifest get a later one first (mtimes.ts), so make rebuilds exactly what depends on them.
 */
function restoreOptions(config: Config, outputsAt: number): RestoreOptions {
  return {
    mtimeMs: outputsAt,
    // which symlinks leaving their root this step makes (store/restore.ts)
    workspace: config.workspace,
    keepOutsideLinks: config.keepOutsideLinks,
  };
}

interface Outcome {
  tier: Tier;
  hitKind: HitKind;
  matchedKey: string;
  files: number;
  bytes: number;
  downloadedBytes: number;
  /** The entry restored, when no store keeps it (restored straight from its pack). */
  meta?: EntryMeta;
  /** After a fallback from the runner cache: what post's incremental save builds on. */
  carry?: Carry | undefined;
}

const MISS: Outcome = {
  tier: 'none',
  hitKind: 'none',
  matchedKey: '',
  files: 0,
  bytes: 0,
  downloadedBytes: 0,
};

export async function runRestore(): Promise<void> {
  let config: Config;
  try {
    config = readConfig('restore');
  } catch (err) {
    handlePhaseError('Inputs', err);
    return;
  }
  for (const w of habitWarnings('restore', config)) core.warning(w);
  if (config.save === 'always') core.exportVariable(SAVE_ON_FAILURE_ENV, 'true');

  const timer = new Timer();
  const notes: string[] = [];
  let plans: PackagePlan[];
  try {
    plans = await timer.time('key', () => planPackages(config));
  } catch (err) {
    if (handlePhaseError('Computing the cache key', err, notes)) return;
    setRestoreOutputs([]);
    await saveState(
      { v: STATE_VERSION, config, packages: [], timings: timer.timings },
      scratchRoot(),
    );
    return;
  }
  for (const p of plans) logKey(p.key);

  const results: PackageOutcome[] = [];
  const states: PackageState[] = [];
  const workDir = await makeWorkDir().catch(() => scratchRoot());
  let store: LocalStore | undefined;
  let stepStore: string | undefined;
  try {
    store = await timer.time('open', () => openStore(config, notes));
  } catch (err) {
    handlePhaseError('Opening the local store', err, notes);
  }
  const remote = openRemote(config.remote, config.remoteTimeoutMs, config.crossOs);
  const bucket = openBucket(config.bucket, config.remoteTimeoutMs);
  try {
    for (const plan of plans) {
      let outcome = MISS;
      if (store) {
        try {
          outcome = await timer.time('restore', () =>
            restoreLadder(config, plan, store, remote, workDir, notes, timer, bucket),
          );
        } catch (err) {
          handlePhaseError(`Restoring ${plan.name}`, err, notes);
        }
      }
      const explanation =
        outcome.hitKind === 'exact' ? undefined : await explainMiss(plan, outcome, store);
      const formatted = explanation ? formatExplanation(explanation) : undefined;
      if (formatted) {
        core.startGroup(`Why ${plan.name} ${outcome.tier === 'none' ? 'missed' : 'fell back'}`);
        core.info(formatted);
        core.endGroup();
      }
      results.push({ name: plan.name, key: plan.key.key, ...outcome, explanation, formatted });
      states.push(packageState(plan, outcome));
    }
  } finally {
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    // (A step store that adopted an entry post builds on is kept for post.)
    if (store && isStepStore(store) && states.some((s) => s.carry?.lent !== undefined)) {
      stepStore = keepStepStore(store);
    }
    await closeStore(store);
  }

  await saveState(
    {
      v: STATE_VERSION,
      config,
      packages: states,
      timings: timer.timings,
      ...(stepStore !== undefined ? { stepStore } : {}),
    },
    scratchRoot(),
  );
  setRestoreOutputs(results);
  for (const r of results) {
    core.info(
      r.tier === 'none'
        ? `Cache miss for ${r.key}`
        : `Cache ${r.hitKind} hit from the ${r.tier} tier: ${r.matchedKey}` +
            (config.lookupOnly ? ' (lookup only, nothing restored)' : ''),
    );
  }
  await writeRestoreSummary(results, timer.timings, notes);

  const missed = results.filter((r) => r.tier === 'none').map((r) => r.key);
  if (config.failOnCacheMiss && missed.length > 0) {
    core.setFailed(
      `No cache entry for ${missed.join(', ')} or its restore keys, and 'fail-on-cache-miss' is true.`,
    );
  }
}

function packageState(plan: PackagePlan, outcome: Outcome): PackageState {
  const exactHit = outcome.hitKind === 'exact';
  // Post saves nothing after an exact hit, so only a package it will save needs its manifest
  // (one hash per source file: large) in the state file.
  return {
    name: plan.name,
    version: plan.version,
    variant: plan.variant,
    roots: plan.roots,
    key: plan.key.key,
    prefix: plan.key.prefix,
    hash: plan.key.hash,
    matchedKey: outcome.matchedKey,
    tier: outcome.tier,
    exactHit,
    ...(exactHit ? {} : { keyManifest: plan.key.manifest }),
    ...(outcome.carry ? { carry: outcome.carry } : {}),
  };
}

/** Compare with the entry restored (a fallback) or the nearest one in the local store (a miss). */
async function explainMiss(
  plan: PackagePlan,
  outcome: Outcome,
  store: LocalStore | undefined,
): Promise<Explanation | undefined> {
  try {
    let previous = outcome.meta?.keyManifest as KeyManifest | undefined;
    if (store && previous === undefined) {
      const meta = outcome.matchedKey
        ? await store.get(outcome.matchedKey)
        : await store.findByPrefix([plan.key.prefix]);
      previous = meta?.keyManifest as KeyManifest | undefined;
    }
    return explain(previous, plan.key.manifest);
  } catch (err) {
    core.info(`No explanation for ${plan.name}: ${errorMessage(err)}`);
    return undefined;
  }
}

async function restoreLadder(
  config: Config,
  plan: PackagePlan,
  store: LocalStore,
  remote: RemoteTier,
  workDir: string,
  notes: string[],
  timer: Timer,
  bucket?: BucketTier,
): Promise<Outcome> {
  const key = plan.key;
  const restoreKeys = config.restoreKeys === 'auto' ? [key.prefix] : [...config.restoreKeys];
  const roots = plan.roots;

  /**
   * Marks the sources that differ from the entry `meta` (none after an exact hit) newer than
   * the outputs are about to be; the options that restore them so.
   */
  const prepare = async (meta: EntryMeta, hitKind: HitKind): Promise<RestoreOptions> => {
    const changes: SourceChanges =
      hitKind === 'exact'
        ? { paths: [] }
        : changedSources(asKeyManifest(meta.keyManifest), key.manifest);
    const outputsAt = await markChangedSources(config.workspace, changes);
    if (changes.paths.length > 0) {
      core.info(
        `${plan.name}: ${changes.paths.length} source(s) marked newer than the outputs restored ` +
          `from ${meta.key}` +
          (changes.everything ? ` (all of them: ${changes.everything})` : ''),
      );
    }
    return restoreOptions(config, outputsAt);
  };

  const fromLocal = async (meta: EntryMeta, hitKind: HitKind): Promise<Outcome | undefined> => {
    const matchedKey = meta.key;
    if (config.lookupOnly) return { ...MISS, tier: 'local', hitKind, matchedKey };
    try {
      const r = await store.restore(matchedKey, roots, await prepare(meta, hitKind));
      await store.touch(matchedKey).catch(() => undefined);
      return { ...MISS, tier: 'local', hitKind, matchedKey, files: r.files, bytes: r.bytes };
    } catch (err) {
      handlePhaseError(`Local entry ${matchedKey} could not be restored`, err, notes);
      return undefined;
    }
  };

  /**
   * A downloaded entry (the runner cache's packs, or the pack a bucket entry was fetched into),
   * restored straight from its packs, every file verified as the workers write it; then
   * written through to the local store. After a fallback from the runner cache post saves a
   * layer over what was restored: it gets the carry (carry.ts), and where no store is kept the
   * entry becomes this step store's, its packs carried to post. A bucket entry is never a
   * layer's base (the base must be in the runner cache). The packs are removed at the end,
   * unless carried.
   */
  const fromPacks = async (
    tier: 'remote' | 'bucket',
    fetched: Fetched,
    hitKind: HitKind,
  ): Promise<Outcome> => {
    const { packs } = fetched;
    try {
      const found = { tier, hitKind, downloadedBytes: fetched.bytes };
      const carries = tier === 'remote' && hitKind !== 'exact' && config.save !== 'never';
      const r = await timer.time('restore pack', () =>
        store.restorePack(packs, roots, (m) => prepare(m, hitKind)),
      );
      const { files, bytes } = r.result;
      const restored = { ...found, matchedKey: r.meta.key, files, bytes, meta: r.meta };
      if (isStepStore(store)) {
        if (!carries) return { ...restored, carry: undefined };
        // No store is kept, and post saves on top of what was restored: the entry becomes this
        // step store's now, from the scan the restore made (its blobs read in place from the
        // packs), and the store, the packs and where each blob lies in them go to post.
        const adopted = await timer
          .time('adopt', () =>
            store.adoptPacks(packs, roots, r.rows, { scanned: r.scanned, lend: true }),
          )
          .catch((err: unknown) => {
            core.info(`Post will save ${r.meta.key}'s successor whole: ${errorMessage(err)}`);
            return undefined;
          });
        const carry = await keepCarry(r.base, adopted && { packs, frames: adopted.frames });
        return { ...restored, carry };
      }
      // Write-through: the verified frames become the local store's, as they are.
      await timer
        .time('import', () => store.adoptPacks(packs, roots, r.rows, { scanned: r.scanned }))
        .catch((err: unknown) => {
          const from = tier === 'remote' ? 'Runner cache' : 'Bucket';
          core.info(
            `${from} entry ${r.meta.key} was restored but not stored locally: ${errorMessage(err)}`,
          );
        });
      return { ...restored, carry: carries ? await keepCarry(r.base) : undefined };
    } finally {
      // (Carried packs were moved away: only the others are still here.)
      for (const p of packs) await fs.rm(p.file, { force: true }).catch(() => undefined);
    }
  };

  const fromRemote = async (hit: RemoteHit, hitKind: HitKind): Promise<Outcome | undefined> => {
    if (config.lookupOnly) return { ...MISS, tier: 'remote', hitKind, matchedKey: hit.matchedKey };
    try {
      const fetched = await timer.time('download', () => remote.fetch(hit, workDir));
      if (hit.base !== undefined) core.info(`${hit.matchedKey} is a layer over ${hit.base}.`);
      return await fromPacks('remote', fetched, hitKind);
    } catch (err) {
      handlePhaseError(`Runner cache entry ${hit.matchedKey} could not be restored`, err, notes);
      return undefined;
    }
  };

  const fromBucket = async (hit: BucketHit, hitKind: HitKind): Promise<Outcome | undefined> => {
    const matchedKey = hit.matchedKey;
    if (config.lookupOnly) return { ...MISS, tier: 'bucket', hitKind, matchedKey };
    try {
      const fetched = await timer.time('download', () =>
        (bucket as BucketTier).fetchPack(hit, store, workDir),
      );
      return await fromPacks('bucket', fetched, hitKind);
    } catch (err) {
      handlePhaseError(`Bucket entry ${matchedKey} could not be restored`, err, notes);
      return undefined;
    }
  };

  // 1. local exact
  const exact = await store.get(key.key);
  if (exact) {
    const o = await fromLocal(exact, 'exact');
    if (o) return o;
  }
  // 1b. bucket exact (the lookup also finds the bucket's best fallback, kept for step 3b)
  const bucketHit = bucket ? await bucket.lookup(key.key, restoreKeys) : {};
  if (bucketHit.exact) {
    const o = await fromBucket(bucketHit.exact, 'exact');
    if (o) return o;
  }
  // 2. remote exact (one call also brings back the remote's best fallback, kept for step 4)
  const remoteHit = await timer.time('lookup', () => remote.lookup(key.key, restoreKeys));
  if (remoteHit && remoteHit.matchedKey === key.key) {
    const o = await fromRemote(remoteHit, 'exact');
    if (o) return o;
  }
  // 3. local fallback
  const local = await store.findByPrefix(restoreKeys);
  if (local && local.key !== key.key) {
    const o = await fromLocal(local, 'fallback');
    if (o) return o;
  }
  // 3b. bucket fallback
  if (bucketHit.fallback) {
    const o = await fromBucket(bucketHit.fallback, 'fallback');
    if (o) return o;
  }
  // 4. remote fallback
  if (remoteHit && remoteHit.matchedKey !== key.key) {
    const o = await fromRemote(remoteHit, 'fallback');
    if (o) return o;
  }
  return MISS;
}
