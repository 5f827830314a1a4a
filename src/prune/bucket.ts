/**
 * The bucket tier as a gc target (issue 15). Entries go through the same pure policy as the
 * other targets (TTL, max-age, closed pull requests, superseded, keep-versions, the size budget
 * counted over deduplicated blobs with LRU); then blobs are swept:
 *
 * - A blob is swept only when no entry references it, counting every entry listed at the start
 *   of the run (those this run deletes too) and every entry saved since (listed again before
 *   the sweep), and its Last-Modified is older than the grace period (checked again just before
 *   it is deleted). So a save in flight on another runner keeps what it uploaded (new blobs are
 *   younger than the grace) and what it found there (referenced, or refreshed by the save when
 *   old: remote/bucket.ts REFRESH_AFTER_MS).
 * - Blobs an entry deletion frees are therefore swept by the next run, not this one: a save
 *   that began from such an entry before this run has finished by then.
 *
 * Bucket entries have no access time: an entry's last use is its Last-Modified (when it was
 * saved). A dry run lists what the entry plan and the sweep would delete, and deletes nothing.
 */
import * as core from '@actions/core';
import { errorMessage } from '../errors.js';
import type { BucketClient, BucketObject } from '../remote/bucket-client.js';
import { inParallel } from '../util/parallel.js';
import { BucketLayout, decodeEntry } from '../remote/bucket.js';
import { PACK_MAGIC } from '../store/pack.js';
import { formatBytes } from '../util/bytes.js';
import type { PruneTarget } from './execute.js';
import { pullNumberOf } from './remote.js';
import type { PruneEntry, PruneSnapshot, PullRequestState } from './types.js';

/** What the snapshot knows of one entry object. */
interface Listed {
  readonly object: BucketObject;
  readonly scope: string;
  readonly key: string;
  readonly blobs: readonly string[];
  /** The entry's meta (untrusted: only grouping and sizes are read from it). */
  readonly meta: Record<string, unknown>;
}

export interface SweepResult {
  readonly blobs: number;
  readonly bytes: number;
  /** Unreferenced blobs still inside the grace period. */
  readonly young: number;
}

export interface BucketTarget extends PruneTarget {
  /** Deletes (or on a dry run lists) unreferenced blobs older than `graceMs`. */
  sweep(now: number, graceMs: number, dryRun: boolean): Promise<SweepResult>;
}

/** The meta fields the policy groups by; the rest of the entry is not read here. */
function metaOf(header: Buffer): Record<string, unknown> {
  const at = PACK_MAGIC.length + 4;
  const len = header.readUInt32BE(at);
  const meta: unknown = JSON.parse(header.subarray(at + 4, at + 4 + len).toString('utf8'));
  return typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : {};
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export function bucketPruneTarget(
  client: BucketClient,
  layout: BucketLayout,
  signal: AbortSignal,
  pullRequestState?: (n: number) => Promise<PullRequestState | undefined>,
): BucketTarget {
  /** Entries by object key, as read (kept across snapshot and sweep). */
  const read = new Map<string, Listed>();
  let handles: string[] = [];

  const readEntries = async (): Promise<Listed[]> => {
    const objects = await client.list(layout.entriesPrefix, signal);
    const out: Listed[] = [];
    await inParallel(objects, 8, async (o) => {
      const known = read.get(o.key);
      if (known && known.object.lastModified === o.lastModified) {
        out.push(known);
        return;
      }
      const parsed = layout.parseEntry(o.key);
      if (!parsed) return;
      const got = await client.get(o.key, signal);
      if (!got) return; // deleted meanwhile
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(Buffer.from(c));
      // An entry that does not decode references nothing and has no package: only the time
      // rules and the budget apply to it (a restore refuses it anyway).
      let blobs: string[] = [];
      let meta: Record<string, unknown> = {};
      try {
        const entry = decodeEntry(Buffer.concat(chunks));
        blobs = entry.blobs.map((b) => b.digest);
        meta = metaOf(entry.header);
      } catch (err) {
        core.info(`Bucket entry ${o.key} does not decode: ${errorMessage(err)}`);
      }
      const l: Listed = { object: o, ...parsed, blobs, meta };
      read.set(o.key, l);
      out.push(l);
    });
    return out;
  };

  return {
    async snapshot(): Promise<PruneSnapshot> {
      const blobObjects = await client.list(layout.blobsPrefix, signal);
      const blobSizes = new Map<string, number>();
      for (const b of blobObjects) {
        const d = layout.parseBlob(b.key);
        if (d) blobSizes.set(d, b.size);
      }
      const listed = await readEntries();
      listed.sort((a, b) => (a.object.key < b.object.key ? -1 : 1));
      const pulls = new Map<number, PullRequestState | undefined>();
      if (pullRequestState) {
        for (const l of listed) {
          const n = pullNumberOf(l.scope);
          if (n !== undefined) pulls.set(n, undefined);
        }
        await inParallel([...pulls.keys()], 4, async (n) => {
          try {
            pulls.set(n, await pullRequestState(n));
          } catch (err) {
            core.warning(
              `Pull request #${n}: ${errorMessage(err)}; its bucket entries are not treated as closed.`,
            );
          }
        });
      }
      handles = listed.map((l) => l.object.key);
      const entries: PruneEntry[] = listed.map((l, id) => {
        const header = l.meta;
        const n = pullNumberOf(l.scope);
        const state = n === undefined ? undefined : pulls.get(n);
        return {
          key: l.key,
          package: str(header['package']),
          version: str(header['version']),
          platform: str(header['platform']),
          variant: str(header['variant']),
          sizeBytes: typeof header['sizeBytes'] === 'number' ? header['sizeBytes'] : 0,
          createdAt: l.object.lastModified,
          lastAccessAt: l.object.lastModified,
          blobs: l.blobs.filter((d) => blobSizes.has(d)),
          remote: {
            id,
            ref: l.scope,
            ...(n !== undefined && state !== undefined ? { pr: { number: n, state } } : {}),
          },
        };
      });
      return { entries, blobSizes };
    },

    async removeMany(ids) {
      const removed: string[] = [];
      for (const id of ids) {
        const key = handles[Number(id)];
        if (key === undefined) continue;
        await client.remove(key, signal);
        removed.push(id);
      }
      // Their blobs are swept by the next run (see the file's comment).
      return { removed, freedBytes: 0 };
    },

    async sweep(now, graceMs, dryRun) {
      const referenced = new Set<string>();
      for (const l of read.values()) for (const d of l.blobs) referenced.add(d);
      // Entries saved since the snapshot (on other runners) protect their blobs too; listed
      // after the blobs, so a blob listed below is either theirs or older than their save.
      const blobObjects = await client.list(layout.blobsPrefix, signal);
      for (const l of await readEntries()) for (const d of l.blobs) referenced.add(d);
      let blobs = 0;
      let bytes = 0;
      let young = 0;
      const candidates = blobObjects.filter((b) => {
        const d = layout.parseBlob(b.key);
        if (d === undefined || referenced.has(d)) return false;
        if (now - b.lastModified <= graceMs) {
          young++;
          return false;
        }
        return true;
      });
      await inParallel(candidates, 8, async (b) => {
        if (dryRun) {
          core.info(
            `[dry run] bucket: would delete unreferenced blob ${b.key} (${formatBytes(b.size)})`,
          );
        } else {
          // Refreshed by a save since the listing: no longer a candidate.
          const now2 = await client.head(b.key, signal);
          if (!now2 || Date.now() - now2.lastModified <= graceMs) return;
          await client.remove(b.key, signal);
        }
        blobs++;
        bytes += b.size;
      });
      return { blobs, bytes, young };
    },
  };
}
