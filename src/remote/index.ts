/**
 * The runner-cache tier as the rest of the action sees it: lookup, fetch (download + checked
 * extraction of the pack) and save. Like Turborepo's remote cache, a tier that fails is switched
 * off for the rest of the run, so one outage costs one warning, not one per call.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../errors.js';
import { tempName } from '../util/fsx.js';
import { remoteAvailable, uploadPack, type SaveOutcome } from './actions-cache.js';
import { extractPack } from './archive.js';
import * as twirp from './twirp.js';

export { PACK_NAME } from './twirp.js';
export type { RemoteHit } from './twirp.js';

export interface RemoteTier {
  /** Why the tier is off, or undefined while it is usable. */
  readonly disabledReason: string | undefined;
  lookup(key: string, restoreKeys: readonly string[]): Promise<twirp.RemoteHit | undefined>;
  /** Download the hit's archive and extract its pack into `workDir`; returns the pack path. */
  fetch(hit: twirp.RemoteHit, workDir: string): Promise<{ pack: string; bytes: number }>;
  /** True or false when the service answered; undefined when it failed (the tier is then off). */
  exists(key: string): Promise<boolean | undefined>;
  /** Whether saving is allowed (the tier is on and ACTIONS_CACHE_MODE permits writes). */
  readonly writable: boolean;
  /** Upload a pack made by LocalStore.exportPack; never throws. */
  upload(packFile: string, key: string): Promise<SaveOutcome>;
}

type Mode = 'read' | 'write';

function cacheModeAllows(mode: Mode, env = process.env): boolean {
  const m = (env['ACTIONS_CACHE_MODE'] ?? '').trim().toLowerCase();
  if (!['none', 'read', 'write', 'write-only'].includes(m)) return true;
  return mode === 'read' ? m === 'read' || m === 'write' : m === 'write' || m === 'write-only';
}

class RunnerCacheTier implements RemoteTier {
  private compressionMemo: twirp.Compression | undefined;

  constructor(
    private readonly env: twirp.ServiceEnv | undefined,
    public disabledReason: string | undefined,
  ) {}

  /** Asked of `zstd` only when the tier is actually used (it spawns a process). */
  private get compression(): twirp.Compression {
    this.compressionMemo ??= twirp.compressionMethod();
    return this.compressionMemo;
  }

  private off(err: unknown, what: string): void {
    this.disabledReason = `${what} failed: ${errorMessage(err)}`;
    core.warning(`Runner cache: ${this.disabledReason}; not using it for the rest of this step.`);
  }

  async lookup(key: string, restoreKeys: readonly string[]): Promise<twirp.RemoteHit | undefined> {
    if (this.disabledReason || !this.env || !cacheModeAllows('read')) return undefined;
    try {
      return await twirp.lookup(this.env, key, restoreKeys, this.compression);
    } catch (err) {
      this.off(err, 'lookup');
      return undefined;
    }
  }

  /** Whether the service already holds `key`; an error switches the tier off (and says so). */
  async exists(key: string): Promise<boolean | undefined> {
    if (this.disabledReason || !this.env) return undefined;
    try {
      const hit = await twirp.lookup(this.env, key, [], this.compression);
      return hit?.matchedKey === key;
    } catch (err) {
      this.off(err, 'lookup before upload');
      return undefined;
    }
  }

  async fetch(hit: twirp.RemoteHit, workDir: string): Promise<{ pack: string; bytes: number }> {
    await fs.mkdir(workDir, { recursive: true });
    const archive = tempName(workDir, 'archive');
    const pack = path.join(workDir, `${path.basename(tempName(workDir, 'x'))}-${twirp.PACK_NAME}`);
    try {
      const bytes = await twirp.download(hit.url, archive);
      await extractPack(archive, hit.compression, pack);
      return { pack, bytes };
    } catch (err) {
      await fs.rm(pack, { force: true });
      throw err;
    } finally {
      await fs.rm(archive, { force: true });
    }
  }

  async upload(packFile: string, key: string): Promise<SaveOutcome> {
    return uploadPack(packFile, key);
  }

  get writable(): boolean {
    return !this.disabledReason && cacheModeAllows('write');
  }
}

export function openRemote(enabled: boolean): RemoteTier {
  if (!enabled) return new RunnerCacheTier(undefined, "the 'remote' input is false");
  const env = twirp.serviceEnv();
  return env && remoteAvailable()
    ? new RunnerCacheTier(env, undefined)
    : new RunnerCacheTier(undefined, 'the runner cache service is not available');
}
