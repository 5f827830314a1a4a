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
import { remoteAvailable, uploadPack } from './actions-cache.js';
import { extractPack } from './archive.js';
import { deadline } from './deadline.js';
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
  /**
   * Upload a pack made by LocalStore.exportPack. Throws when it was not saved, with the reason
   * (a RemoteError, or a DeadlineError that also switches the tier off).
   */
  upload(packFile: string, key: string): Promise<void>;
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
    /** The overall deadline of each operation (the `remote-timeout` input). */
    private readonly timeoutMs: number,
    /** Entries shared with other OSes (the `cross-os` input; twirp.cacheVersion). */
    private readonly crossOs = false,
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

  /**
   * A transfer that ran out of time switches the tier off without a warning of its own: the
   * caller warns once, with the reason, and later packages do not wait out the deadline again.
   */
  private offIfSlow(err: unknown): void {
    if (!(err instanceof Error && err.name === 'DeadlineError')) return;
    this.disabledReason = errorMessage(err);
    core.info(`Runner cache: ${this.disabledReason}; not using it for the rest of this step.`);
  }

  async lookup(key: string, restoreKeys: readonly string[]): Promise<twirp.RemoteHit | undefined> {
    if (this.disabledReason || !this.env || !cacheModeAllows('read')) return undefined;
    try {
      const limit = deadline(this.timeoutMs, 'the lookup');
      return await twirp.lookup(
        this.env,
        key,
        restoreKeys,
        this.compression,
        limit.signal,
        this.crossOs,
      );
    } catch (err) {
      this.off(err, 'lookup');
      return undefined;
    }
  }

  /** Whether the service already holds `key`; an error switches the tier off (and says so). */
  async exists(key: string): Promise<boolean | undefined> {
    if (this.disabledReason || !this.env) return undefined;
    try {
      const limit = deadline(this.timeoutMs, 'the lookup');
      const hit = await twirp.lookup(
        this.env,
        key,
        [],
        this.compression,
        limit.signal,
        this.crossOs,
      );
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
      const limit = deadline(this.timeoutMs, 'the download');
      const bytes = await twirp.download(
        hit.url,
        archive,
        { signal: limit.signal },
        { label: `Runner cache: downloading ${hit.matchedKey}` },
      );
      await extractPack(archive, hit.compression, pack);
      return { pack, bytes };
    } catch (err) {
      await fs.rm(pack, { force: true });
      this.offIfSlow(err);
      throw err;
    } finally {
      await fs.rm(archive, { force: true });
    }
  }

  async upload(packFile: string, key: string): Promise<void> {
    try {
      await uploadPack(packFile, key, this.timeoutMs, this.crossOs);
    } catch (err) {
      this.offIfSlow(err);
      throw err;
    }
  }

  get writable(): boolean {
    return !this.disabledReason && cacheModeAllows('write');
  }
}

/**
 * The tier, each of its operations bounded by `timeoutMs` (the `remote-timeout` input); with
 * `crossOs` (the `cross-os` input) its entries are shared with runners of other OSes.
 */
export function openRemote(enabled: boolean, timeoutMs: number, crossOs = false): RemoteTier {
  if (!enabled) return new RunnerCacheTier(undefined, "the 'remote' input is false", timeoutMs);
  const env = twirp.serviceEnv();
  return env && remoteAvailable()
    ? new RunnerCacheTier(env, undefined, timeoutMs, crossOs)
    : new RunnerCacheTier(undefined, 'the runner cache service is not available', timeoutMs);
}
