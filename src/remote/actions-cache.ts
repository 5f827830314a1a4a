/**
 * The one file that imports @actions/cache (STYLE.md habit 8). It uploads a remote entry: a
 * single pack file, archived and sent by the official client. The version the client computes
 * comes from the literal path strings, so the pack is always given as the bare relative name
 * PACK_NAME from inside its own directory: the same version on every runner.
 */
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import * as path from 'node:path';
import { PACK_NAME } from './twirp.js';

export type SaveOutcome = 'saved' | 'failed';

export function remoteAvailable(): boolean {
  return cache.isFeatureAvailable();
}

/** Upload `packFile` (whose basename must be PACK_NAME) under `key`. Never throws. */
export async function uploadPack(packFile: string, key: string): Promise<SaveOutcome> {
  if (path.basename(packFile) !== PACK_NAME) throw new Error(`pack must be named ${PACK_NAME}`);
  const previous = process.cwd();
  process.chdir(path.dirname(packFile));
  try {
    const id = await cache.saveCache([PACK_NAME], key);
    return id === -1 ? 'failed' : 'saved';
  } catch (err) {
    // Only validation and set-up errors escape @actions/cache; the rest it reports itself.
    core.warning(`Runner cache save failed: ${(err as Error).message}`);
    return 'failed';
  } finally {
    process.chdir(previous);
  }
}
