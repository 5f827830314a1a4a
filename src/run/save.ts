/**
 * Post step (or the save sub-action): store what the job built in the local store, then upload
 * the entry to the runner cache as one pack. In post, everything comes from main's state; the
 * save sub-action reads its inputs and takes the key explicitly or computes it as main would.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../errors.js';
import { readConfig, type Config } from '../inputs.js';
import { computeKey, logKey } from '../key/index.js';
import { openRemote, PACK_NAME } from '../remote/index.js';
import { Timer, writeSaveSummary, type SaveReport } from '../report.js';
import { loadState, type MainState } from '../state.js';
import { sha256 } from '../util/bytes.js';
import { exists } from '../util/fsx.js';
import { handlePhaseError, keyInputs, makeWorkDir, openStore, outputRoots } from './common.js';

interface SavePlan {
  config: Config;
  key: string;
  hash: string;
  keyManifest?: unknown;
}

/** Work out what to save, or why nothing is saved (a string). */
async function plan(state: MainState | undefined, timer: Timer): Promise<SavePlan | string> {
  if (state) {
    if (state.config.save === 'never') return "'save' is never";
    if (!state.key || !state.hash) return 'main computed no key';
    if (state.exactHit) return `exact hit on ${state.key} (${state.tier}); nothing new to save`;
    let keyManifest: unknown;
    if (state.manifestFile) {
      keyManifest = JSON.parse(await fs.readFile(state.manifestFile, 'utf8')) as unknown;
    }
    return { config: state.config, key: state.key, hash: state.hash, keyManifest };
  }
  const config = readConfig('save');
  if (config.save === 'never') return "'save' is never";
  if (config.key !== undefined) return { config, key: config.key, hash: sha256(config.key) };
  const key = await timer.time('key', () => computeKey(keyInputs(config)));
  logKey(key);
  return { config, key: key.key, hash: key.hash, keyManifest: key.manifest };
}

export async function runSave(): Promise<void> {
  const timer = new Timer();
  const notes: string[] = [];
  let p: SavePlan | string;
  try {
    p = await plan(loadState(), timer);
  } catch (err) {
    handlePhaseError('Preparing the save', err, notes);
    return;
  }
  if (typeof p === 'string') {
    core.info(`Not saving: ${p}.`);
    return;
  }
  const { config, key } = p;
  const roots = outputRoots(config);
  const present = await Promise.all(roots.map((r) => exists(r.absPath)));
  if (!present.some(Boolean)) {
    core.warning(
      `Not saving ${key}: none of the paths exist (${roots.map((r) => r.name).join(', ')}).`,
    );
    return;
  }

  const report: { -readonly [K in keyof SaveReport]: SaveReport[K] } = {
    key,
    local: 'not saved',
    remote: 'not saved',
    files: 0,
    bytes: 0,
    newBytes: 0,
    uploadedBytes: 0,
    timings: {},
    notes,
  };
  const workDir = await makeWorkDir();
  try {
    const store = await timer.time('open', () => openStore(config, notes));
    let saved = false;
    try {
      const r = await timer.time('local', () =>
        store.save({
          key,
          package: config.name,
          version: config.version,
          hash: p.hash,
          platform: config.platform,
          variant: config.variant,
          roots,
          keyManifest: p.keyManifest,
        }),
      );
      saved = true;
      report.local = r.created ? 'saved' : 'already present';
      report.files = r.entry.files;
      report.bytes = r.entry.sizeBytes;
      report.newBytes = r.newBytes;
      core.info(
        `Local store: ${report.local} ${key} (${r.entry.files} files, ${r.newBlobs} new blobs).`,
      );
    } catch (err) {
      handlePhaseError('Saving to the local store', err, notes);
    }

    const remote = openRemote(config.remote);
    if (!saved) {
      report.remote = 'skipped (nothing stored locally to upload)';
    } else if (!remote.writable) {
      report.remote = `off: ${remote.disabledReason ?? 'ACTIONS_CACHE_MODE does not allow writes'}`;
    } else {
      report.remote = await timer.time('remote', async () => {
        const present = await remote.exists(key);
        if (present === undefined) return `off: ${remote.disabledReason ?? 'unavailable'}`;
        if (present) return 'already present';
        const packFile = path.join(workDir, PACK_NAME);
        try {
          const { bytes } = await store.exportPack(key, packFile);
          const outcome = await remote.upload(packFile, key);
          if (outcome === 'saved') report.uploadedBytes = bytes;
          return outcome;
        } catch (err) {
          handlePhaseError('Saving to the runner cache', err, notes);
          return `failed: ${errorMessage(err)}`;
        }
      });
      core.info(`Runner cache: ${report.remote} ${key}.`);
    }
  } finally {
    await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
  report.timings = timer.timings;
  await writeSaveSummary(report);
}
