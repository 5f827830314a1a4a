/**
 * The runner-cache tier as the rest of the action sees it: lookup, fetch (download + checked
 * extraction of the pack) and save. Like Turborepo's remote cache, a tier that fails is switched
 * off for the rest of the run, so one outage costs one warning, not one per call.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import { errorMessage, RemoteError } from '../errors.js';
import type { PackFile } from '../store/index.js';
import { formatBytes } from '../util/bytes.js';
import { freeBytes, tempName } from '../util/fsx.js';
import { deadline } from './deadline.js';
import * as transfer from './transfer.js';
import * as twirp from './twirp.js';

export type { RemoteHit } from './twirp.js';
export { layerKey, parseRemoteKey } from './twirp.js';

/** What a fetch brought: the entry's pack, then (for a layer) its base's. */
export interface Fetched {
  readonly packs: readonly PackFile[];
  readonly bytes: number;
}

/** The largest entry accepted: GitHub's runner-cache quota for a whole repository. */
export const MAX_PACK_BYTES = 10 * 1024 ** 3;

/** Where a download may go, and how large it may be: the least of the maximum and the room. */
export async function downloadBudget(
  workDir: string,
  maxBytes = MAX_PACK_BYTES,
): Promise<transfer.DownloadBudget> {
  const free = await freeBytes(workDir);
  if (free !== undefined && free < maxBytes) {
    return { bytes: free, reason: `the free space in ${workDir} (${formatBytes(free)})` };
  }
  return { bytes: maxBytes, reason: `the largest entry accepted (${formatBytes(maxBytes)})` };
}

export interface RemoteTier {
  /** Why the tier is off, or undefined while it is usable. */
  readonly disabledReason: string | undefined;
  lookup(key: string, restoreKeys: readonly string[]): Promise<twirp.RemoteHit | undefined>;
  /**
   * Download the hit's pack into `workDir`, and for a layer its base's pack too; returns the
   * packs (each with the key it must prove to hold) and the bytes downloaded.
   */
  fetch(hit: twirp.RemoteHit, workDir: string): Promise<Fetched>;
  /** True or false when the service answered; undefined when it failed (the tier is then off). */
  exists(key: string): Promise<boolean | undefined>;
  /** Whether saving is allowed (the tier is on and ACTIONS_CACHE_MODE permits writes). */
  readonly writable: boolean;
  /**
   * Uploads a pack as LocalStore.packStream reads it (sent as it is read): 'saved' with the bytes
   * sent, or 'already present' when another job saved the key first. Throws when it was not
   * saved, with the reason (a RemoteError, or a DeadlineError that also switches the tier off).
   */
  upload(pack: transfer.UploadSource, key: string): Promise<Uploaded>;
}

/** What an upload did: saved (with the bytes sent), or found the key saved already. */
export interface Uploaded {
  readonly status: 'saved' | 'already present';
  readonly bytes: number;
}

type Mode = 'read' | 'write';

function cacheModeAllows(mode: Mode, env = process.env): boolean {
  const m = (env['ACTIONS_CACHE_MODE'] ?? '').trim().toLowerCase();
  if (!['none', 'read', 'write', 'write-only'].includes(m)) return true;
  return mode === 'read' ? m === 'read' || m === 'write' : m === 'write' || m === 'write-only';
}

class RunnerCacheTier implements RemoteTier {
  constructor(
    private readonly env: twirp.ServiceEnv | undefined,
    public disabledReason: string | undefined,
    /** The overall deadline of each operation (the `remote-timeout` input). */
    private readonly timeoutMs: number,
    /** Entries shared with other OSes (the `cross-os` input; twirp.cacheVersion). */
    private readonly crossOs = false,
  ) {}

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
      return await twirp.lookup(this.env, key, restoreKeys, limit.signal, this.crossOs);
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
      const hit = await twirp.lookup(this.env, key, [], limit.signal, this.crossOs);
      return hit?.matchedKey === key;
    } catch (err) {
      this.off(err, 'lookup before upload');
      return undefined;
    }
  }

  async fetch(hit: twirp.RemoteHit, workDir: string): Promise<Fetched> {
    await fs.mkdir(workDir, { recursive: true });
    const packs: PackFile[] = [];
    let bytes = 0;
    try {
      const limit = deadline(this.timeoutMs, 'the download');
      const get = async (url: string, key: string): Promise<void> => {
        const file = tempName(workDir, 'pack');
        packs.push({ file, key });
        bytes += await transfer.download(url, file, await downloadBudget(workDir), {
          signal: limit.signal,
          progress: { label: `Runner cache: downloading ${key}` },
        });
      };
      await get(hit.url, hit.matchedKey);
      if (hit.base !== undefined) {
        const env = this.env as twirp.ServiceEnv;
        const base = await twirp.lookup(env, hit.base, [], limit.signal, this.crossOs);
        if (base?.remoteKey !== hit.base) {
          throw new RemoteError(
            `${hit.matchedKey} is a layer over ${hit.base}, which the runner cache no longer holds`,
          );
        }
        await get(base.url, hit.base);
      }
      return { packs, bytes };
    } catch (err) {
      for (const p of packs) await fs.rm(p.file, { force: true });
      this.offIfSlow(err);
      throw err;
    }
  }

  async upload(pack: transfer.UploadSource, key: string): Promise<Uploaded> {
    const env = this.env;
    if (!env) throw new Error('the runner cache is off');
    try {
      const limit = deadline(this.timeoutMs, 'the upload');
      const r = await twirp.reserve(env, key, limit.signal, this.crossOs);
      if (!r) return { status: 'already present', bytes: 0 };
      const bytes = await transfer.upload(r.uploadUrl, pack, {
        signal: limit.signal,
        progress: { label: `Runner cache: uploading ${key}` },
      });
      await twirp.finalize(env, key, r, bytes, limit.signal);
      return { status: 'saved', bytes };
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
  return env
    ? new RunnerCacheTier(env, undefined, timeoutMs, crossOs)
    : new RunnerCacheTier(undefined, 'the runner cache service is not available', timeoutMs);
}
