/**
 * The runner cache as a prune target: the REST listing turned into a policy snapshot (keys
 * parsed into package, platform and variant; pull request refs resolved to their state), and
 * deletion by cache id. Keys that do not parse as clyde keys are left out of the snapshot (their
 * bytes still count against the budget) unless foreign keys are included.
 */
import * as core from '@actions/core';
import { errorMessage } from '../errors.js';
import type { CacheApi, RestCacheEntry } from '../remote/rest.js';
import { parseRemoteKey } from '../remote/twirp.js';
import { inParallel } from '../util/parallel.js';
import type { PruneTarget } from './execute.js';
import type { PruneEntry, PruneSnapshot, PullRequestState } from './types.js';

export interface ParsedKey {
  readonly name: string;
  readonly platform: string;
  readonly variant: string;
  readonly hash: string;
}

/**
 * `<prefix><name>-<platform>-<variant>-<hash>` (src/key/index.ts: the three parts are sanitised
 * and contain no '-'; the hash is 64 hex digits), or undefined for any other key.
 */
export function parseClydeKey(key: string, prefix: string): ParsedKey | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const parts = key.slice(prefix.length).split('-');
  if (parts.length !== 4) return undefined;
  const [name, platform, variant, hash] = parts as [string, string, string, string];
  const part = /^[A-Za-z0-9._]{1,100}$/;
  if (!part.test(name) || !part.test(platform) || !part.test(variant)) return undefined;
  if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
  return { name, platform, variant, hash };
}

/** The pull request number of `refs/pull/<n>/merge` (or `/head`). */
export function pullNumberOf(ref: string): number | undefined {
  const m = /^refs\/pull\/(\d+)\/(?:merge|head)$/.exec(ref);
  return m ? Number(m[1]) : undefined;
}

export interface RemoteTargetOptions {
  readonly keyPrefix: string;
  readonly includeForeignKeys: boolean;
  /** Pull request lookups in flight at once; default 4. */
  readonly concurrency?: number;
}

export interface RemoteTarget extends PruneTarget {
  /** Caches listed by the last snapshot (all of them, foreign ones included). */
  readonly listed: () => readonly RestCacheEntry[];
}

export function remotePruneTarget(api: CacheApi, opts: RemoteTargetOptions): RemoteTarget {
  let listed: RestCacheEntry[] = [];
  const sizes = new Map<string, number>();
  return {
    listed: () => listed,

    async snapshot(): Promise<PruneSnapshot> {
      listed = await api.listCaches();
      const pulls = new Map<number, PullRequestState | undefined>();
      for (const c of listed) {
        const n = pullNumberOf(c.ref);
        if (n !== undefined) pulls.set(n, undefined);
      }
      await inParallel([...pulls.keys()], opts.concurrency ?? 4, async (n) => {
        try {
          pulls.set(n, await api.pullRequestState(n));
        } catch (err) {
          // Unknown state: treated as open, so its caches are not deleted as closed-pr.
          core.warning(
            `Pull request #${n}: ${errorMessage(err)}; its caches are not treated as closed.`,
          );
        }
      });

      const entries: PruneEntry[] = [];
      let fixedBytes = 0;
      for (const c of listed) {
        // A layer's key names its base (twirp.ts LAYER_MARK); its own part parses as any key.
        const own = parseRemoteKey(c.key);
        const parsed = parseClydeKey(own.key, opts.keyPrefix);
        if (parsed === undefined && !opts.includeForeignKeys) {
          fixedBytes += c.sizeBytes;
          continue;
        }
        const n = pullNumberOf(c.ref);
        const state = n === undefined ? undefined : pulls.get(n);
        sizes.set(String(c.id), c.sizeBytes);
        entries.push({
          key: c.key,
          package: parsed?.name ?? '',
          version: '',
          platform: parsed?.platform ?? '',
          variant: parsed?.variant ?? '',
          sizeBytes: c.sizeBytes,
          createdAt: c.createdAt,
          lastAccessAt: c.lastAccessedAt,
          blobs: [],
          remote: {
            id: c.id,
            ref: c.ref,
            ...(n !== undefined && state !== undefined ? { pr: { number: n, state } } : {}),
            ...(parsed === undefined ? { foreign: true } : {}),
            ...(own.base !== undefined ? { base: own.base } : {}),
          },
        });
      }
      return { entries, fixedBytes };
    },

    async removeMany(handles) {
      const removed: string[] = [];
      let freedBytes = 0;
      for (const h of handles) {
        const gone = await api.deleteCache(Number(h));
        if (!gone) core.info(`Cache ${h} was already gone.`);
        removed.push(h);
        freedBytes += gone ? (sizes.get(h) ?? 0) : 0;
      }
      return { removed, freedBytes };
    },
  };
}
