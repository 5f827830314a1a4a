/**
 * Main step: compute the key, then restore in this order — local exact, remote exact, local
 * fallback, remote fallback, miss — and hand post everything it needs in state.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../errors.js';
import { readConfig, type Config } from '../inputs.js';
import { computeKey, logKey } from '../key/index.js';
import type { CacheKey } from '../key/types.js';
import { openRemote, type RemoteHit, type RemoteTier } from '../remote/index.js';
import {
  setRestoreOutputs,
  Timer,
  writeRestoreSummary,
  type HitKind,
  type RestoreReport,
} from '../report.js';
import { saveState, type Tier } from '../state.js';
import type { LocalStore } from '../store/index.js';
import { writeFileAtomic } from '../util/fsx.js';
import {
  handlePhaseError,
  keyInputs,
  makeWorkDir,
  openStore,
  outputRoots,
  scratchRoot,
} from './common.js';

/** Exported to the job's environment when save is 'always', read by action.yml's post-if. */
export const SAVE_ON_FAILURE_ENV = 'CLYDE_CACHE_SAVE_ON_FAILURE';

interface Outcome {
  tier: Tier;
  hitKind: HitKind;
  matchedKey: string;
  files: number;
  bytes: number;
  downloadedBytes: number;
}

/**
 * Saved mtimes are restored: a make-style build then sees outputs as old as the build that made
 * them, so a source edited since (or checked out since) is rebuilt. Restoring with the current
 * time would make stale outputs look newer than edited sources after a fallback hit.
 */
const RESTORE_OPTIONS = { mtimes: true } as const;

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
  if (config.save === 'always') core.exportVariable(SAVE_ON_FAILURE_ENV, 'true');

  const timer = new Timer();
  const notes: string[] = [];
  let key: CacheKey;
  try {
    key = await timer.time('key', () => computeKey(keyInputs(config)));
  } catch (err) {
    if (handlePhaseError('Computing the cache key', err, notes)) return;
    setRestoreOutputs({ key: '', matchedKey: '', tier: 'none', hitKind: 'none' });
    saveState({ v: 1, config, tier: 'none', exactHit: false, timings: timer.timings });
    return;
  }
  logKey(key);

  let outcome = MISS;
  const workDir = await makeWorkDir().catch(() => scratchRoot());
  try {
    const store = await timer.time('open', () => openStore(config, notes));
    const remote = openRemote(config.remote);
    outcome = await timer.time('restore', () =>
      restoreLadder(config, key, store, remote, workDir, notes),
    );
  } catch (err) {
    handlePhaseError('Restore', err, notes);
    outcome = MISS;
  } finally {
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }

  let manifestFile: string | undefined = path.join(scratchRoot(), `manifest-${key.hash}.json`);
  try {
    await writeFileAtomic(manifestFile, JSON.stringify(key.manifest));
  } catch (err) {
    core.info(`Key manifest not kept for post: ${errorMessage(err)}`);
    manifestFile = undefined;
  }

  saveState({
    v: 1,
    config,
    key: key.key,
    prefix: key.prefix,
    hash: key.hash,
    matchedKey: outcome.matchedKey,
    tier: outcome.tier,
    exactHit: outcome.hitKind === 'exact',
    ...(manifestFile ? { manifestFile } : {}),
    timings: timer.timings,
  });
  const report: RestoreReport = { key: key.key, ...outcome, timings: timer.timings, notes };
  setRestoreOutputs(report);
  core.info(
    outcome.tier === 'none'
      ? `Cache miss for ${key.key}`
      : `Cache ${outcome.hitKind} hit from the ${outcome.tier} tier: ${outcome.matchedKey}` +
          (config.lookupOnly ? ' (lookup only, nothing restored)' : ''),
  );
  await writeRestoreSummary(report);

  if (config.failOnCacheMiss && outcome.tier === 'none') {
    core.setFailed(
      `No cache entry for ${key.key} or its restore keys, and 'fail-on-cache-miss' is true.`,
    );
  }
}

async function restoreLadder(
  config: Config,
  key: CacheKey,
  store: LocalStore,
  remote: RemoteTier,
  workDir: string,
  notes: string[],
): Promise<Outcome> {
  const restoreKeys = config.restoreKeys === 'auto' ? [key.prefix] : [...config.restoreKeys];
  const roots = outputRoots(config);

  const fromLocal = async (matchedKey: string, hitKind: HitKind): Promise<Outcome | undefined> => {
    if (config.lookupOnly) return { ...MISS, tier: 'local', hitKind, matchedKey };
    try {
      const r = await store.restore(matchedKey, roots, RESTORE_OPTIONS);
      await store.touch(matchedKey).catch(() => undefined);
      return { ...MISS, tier: 'local', hitKind, matchedKey, files: r.files, bytes: r.bytes };
    } catch (err) {
      handlePhaseError(`Local entry ${matchedKey} could not be restored`, err, notes);
      return undefined;
    }
  };

  const fromRemote = async (hit: RemoteHit, hitKind: HitKind): Promise<Outcome | undefined> => {
    if (config.lookupOnly) return { ...MISS, tier: 'remote', hitKind, matchedKey: hit.matchedKey };
    try {
      const { pack, bytes: downloaded } = await remote.fetch(hit, workDir);
      const meta = await store.importPack(pack);
      if (meta.key !== hit.matchedKey) {
        throw new Error(`the pack holds '${meta.key}', not '${hit.matchedKey}'`);
      }
      const r = await store.restore(meta.key, roots, RESTORE_OPTIONS);
      return {
        tier: 'remote',
        hitKind,
        matchedKey: meta.key,
        files: r.files,
        bytes: r.bytes,
        downloadedBytes: downloaded,
      };
    } catch (err) {
      handlePhaseError(`Runner cache entry ${hit.matchedKey} could not be restored`, err, notes);
      return undefined;
    }
  };

  // 1. local exact
  if (await store.get(key.key)) {
    const o = await fromLocal(key.key, 'exact');
    if (o) return o;
  }
  // 2. remote exact (one call also brings back the remote's best fallback, kept for step 4)
  const remoteHit = await remote.lookup(key.key, restoreKeys);
  if (remoteHit && remoteHit.matchedKey === key.key) {
    const o = await fromRemote(remoteHit, 'exact');
    if (o) return o;
  }
  // 3. local fallback
  const local = await store.findByPrefix(restoreKeys);
  if (local && local.key !== key.key) {
    const o = await fromLocal(local.key, 'fallback');
    if (o) return o;
  }
  // 4. remote fallback
  if (remoteHit && remoteHit.matchedKey !== key.key) {
    const o = await fromRemote(remoteHit, 'fallback');
    if (o) return o;
  }
  return MISS;
}
