/**
 * The prune policy (STYLE.md habit 5: decide, then act): a pure function from a snapshot of the
 * local store or of the runner-cache listing, the limits and a clock to a plan. Nothing here
 * reads a file or the network; src/prune/execute.ts applies the plan.
 *
 * Rules, in the seeds' order (the first rule that wants an entry is its reason):
 *   1. expired     the `content` TTL class: unused (last access) for longer than ttl.content
 *   2. max-age     created longer ago than max-age
 *   3. closed-pr   runner cache: the entry's ref is a pull request that is closed or merged
 *   4. superseded  runner cache: a newer entry of the same package+platform+variant on the same ref
 *   5. size-budget least recently used first, until the bytes fit max-size
 * and what overrides them:
 *   pinned         keys this job restored or is saving: never deleted
 *   keep-versions  the newest N entries (createdAt) of each package+platform+variant survive
 *                  every rule; entries of closed pull requests do not count (their ref is gone)
 *   referenced     size-budget only: an entry all of whose blobs are held by pinned or kept
 *                  entries frees nothing when deleted, so LRU passes over it
 *
 * The TTL has one class, content: entries, by time since last access (local store and runner
 * cache alike; the default 7d matches GitHub's own eviction of caches unused for 7 days).
 *
 * Housekeeping verdicts (the store gathers the facts, these decide, the store's maintenance room
 * acts; each deletion carries a HousekeepingReason): `planDropBroken` (entries that need a blob
 * a restore found missing or corrupt), `planRepair` and `planOrphanBlobs` (verify --repair) and
 * `planSweepOldLayout` (what an older store left).
 *
 * Sizes: with `blobSizes` (the content-addressed local store) an entry frees only the blobs no
 * remaining entry references, so a blob shared with a kept entry survives its other entries'
 * deletion; without (runner cache) an entry frees its own size.
 */
import { DELETE_REASONS } from './types.js';
import type {
  EntryFacts,
  RepairFacts,
  RepairPlan,
  Verdict,
  DeleteReason,
  KeepReason,
  KeptEntry,
  PlannedDeletion,
  PruneEntry,
  PruneLimits,
  PruneSnapshot,
  PrunePlan,
} from './types.js';

/** Groups of entries keep-versions counts in: package, platform and variant. */
function groupOf(e: PruneEntry): string {
  return `${e.package}\u0000${e.platform}\u0000${e.variant}`;
}

function isClosedPr(e: PruneEntry): boolean {
  const s = e.remote?.pr?.state;
  return s === 'closed' || s === 'merged';
}

/** Byte-order sort keys, made once (Buffer.compare per comparison, no allocation). */
function byteKeys(entries: readonly PruneEntry[]): Buffer[] {
  return entries.map((e) =>
    Buffer.from(`${e.key}\u0000${e.remote?.ref ?? ''}\u0000${e.remote?.id ?? ''}`, 'utf8'),
  );
}

export function planPrune(snapshot: PruneSnapshot, limits: PruneLimits, now: number): PrunePlan {
  const entries = snapshot.entries;
  const n = entries.length;
  const sortKeys = byteKeys(entries);
  const byKey = (a: number, b: number): number =>
    Buffer.compare(sortKeys[a] as Buffer, sortKeys[b] as Buffer);
  const newestFirst = (a: number, b: number): number =>
    (entries[b] as PruneEntry).createdAt - (entries[a] as PruneEntry).createdAt || byKey(a, b);

  const pinnedKeys = new Set(limits.pinnedKeys ?? []);
  const pinned = (i: number): boolean => pinnedKeys.has((entries[i] as PruneEntry).key);
  // A runner-cache layer needs its base: a base stays while one of its layers does.
  const layersOf = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const base = (entries[i] as PruneEntry).remote?.base;
    if (base !== undefined) pushTo(layersOf, base, i);
  }

  // keep-versions: the newest N of each group; superseded: all but the newest of each group on
  // the same ref (runner cache only). Foreign keys have no group.
  const groups = new Map<string, number[]>();
  const refGroups = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const e = entries[i] as PruneEntry;
    if (e.remote?.foreign) continue;
    const g = groupOf(e);
    if (!isClosedPr(e)) pushTo(groups, g, i);
    if (e.remote) pushTo(refGroups, `${e.remote.ref}\u0000${g}`, i);
  }
  const protectedByVersions = new Uint8Array(n);
  if (limits.keepVersions > 0) {
    for (const members of groups.values()) {
      members.sort(newestFirst);
      for (let k = 0; k < Math.min(limits.keepVersions, members.length); k++) {
        protectedByVersions[members[k] as number] = 1;
      }
    }
  }
  const superseded = new Uint8Array(n);
  for (const members of refGroups.values()) {
    if (members.length < 2) continue;
    members.sort(newestFirst);
    for (let k = 1; k < members.length; k++) superseded[members[k] as number] = 1;
  }

  // Bytes: reference counts over blobs (local store) or entry sizes (runner cache). Digests are
  // interned to small integers once, so the counting below runs over typed arrays.
  const content = internBlobs(entries, snapshot.blobSizes);
  let bytes = snapshot.fixedBytes ?? 0;
  if (content) {
    for (let b = 0; b < content.counts.length; b++) {
      if ((content.counts[b] as number) > 0) bytes += content.sizes[b] as number;
    }
  } else {
    for (const e of entries) bytes += e.sizeBytes;
  }
  const bytesBefore = bytes;

  const deleted = new Uint8Array(n);
  const keptMark = new Uint8Array(n);
  const deletions: PlannedDeletion[] = [];
  const kept: KeptEntry[] = [];

  const remove = (i: number, reason: DeleteReason): void => {
    const e = entries[i] as PruneEntry;
    let freed = 0;
    if (content) {
      const { counts, sizes } = content;
      for (const b of content.refs[i] as Int32Array) {
        const c = (counts[b] as number) - 1;
        counts[b] = c;
        if (c === 0) freed += sizes[b] as number;
      }
    } else freed = e.sizeBytes;
    bytes -= freed;
    deleted[i] = 1;
    deletions.push({
      handle: e.remote ? String(e.remote.id) : e.key,
      key: e.key,
      reason,
      freedBytes: freed,
      sizeBytes: e.sizeBytes,
      ...(e.remote ? { ref: e.remote.ref } : {}),
    });
  };
  const keep = (i: number, wanted: DeleteReason, keptBy: KeepReason): void => {
    if (keptMark[i]) return;
    keptMark[i] = 1;
    const e = entries[i] as PruneEntry;
    kept.push({ key: e.key, ...(e.remote ? { ref: e.remote.ref } : {}), wanted, keptBy });
  };
  /** A layer of entry i that is not deleted (so far: the plan keeps a base conservatively). */
  const liveLayer = (i: number): boolean =>
    (layersOf.get((entries[i] as PruneEntry).key) ?? []).some((j) => !deleted[j]);
  /** Pinning, keep-versions, then a live layer's need of its base, override every rule. */
  const overridden = (i: number, wanted: DeleteReason): boolean => {
    if (pinned(i)) keep(i, wanted, 'pinned');
    else if (protectedByVersions[i]) keep(i, wanted, 'keep-versions');
    else if (liveLayer(i)) keep(i, wanted, 'base-of-layer');
    else return false;
    return true;
  };

  // Rules 1-4, in key order so that the plan (and its per-entry freed bytes) is deterministic.
  const ttl = limits.contentTtlMs;
  const maxAge = limits.maxAgeMs;
  const order = Array.from({ length: n }, (_, i) => i).sort(byKey);
  for (const i of order) {
    const e = entries[i] as PruneEntry;
    let reason: DeleteReason | undefined;
    if (ttl !== null && now - e.lastAccessAt > ttl) reason = 'expired';
    else if (maxAge !== null && now - e.createdAt > maxAge) reason = 'max-age';
    else if (isClosedPr(e)) reason = 'closed-pr';
    else if (superseded[i]) reason = 'superseded';
    if (reason !== undefined && !overridden(i, reason)) remove(i, reason);
  }

  // Rule 5: least recently used first, down to the budget.
  const max = limits.maxSizeBytes;
  if (max !== null && bytes > max) {
    const lru = order
      .filter((i) => !deleted[i])
      .sort((a, b) => {
        const ea = entries[a] as PruneEntry;
        const eb = entries[b] as PruneEntry;
        return ea.lastAccessAt - eb.lastAccessAt || ea.createdAt - eb.createdAt || byKey(a, b);
      });
    // Blobs no LRU deletion can free: those of pinned and keep-versions entries.
    let anchored: Uint8Array | undefined;
    const allAnchored = (i: number): boolean => {
      if (!content) return false;
      const refs = content.refs[i] as Int32Array;
      if (refs.length === 0) return false;
      if (anchored === undefined) {
        anchored = new Uint8Array(content.counts.length);
        for (let j = 0; j < n; j++) {
          if (!deleted[j] && (pinned(j) || protectedByVersions[j])) {
            for (const b of content.refs[j] as Int32Array) anchored[b] = 1;
          }
        }
      }
      for (const b of refs) if (!anchored[b]) return false;
      return true;
    };
    for (const i of lru) {
      if (bytes <= max) break;
      if (overridden(i, 'size-budget')) continue;
      if (allAnchored(i)) {
        keep(i, 'size-budget', 'referenced');
        continue;
      }
      remove(i, 'size-budget');
    }
  }

  return {
    now,
    entriesBefore: n,
    bytesBefore,
    entriesAfter: n - deletions.length,
    bytesAfter: bytes,
    maxSizeBytes: max,
    budgetMet: max === null || bytes <= max,
    deletions,
    kept,
  };
}

interface InternedBlobs {
  /** Per entry, its blobs as indexes into counts and sizes. */
  readonly refs: Int32Array[];
  /** References per blob from entries still kept. */
  readonly counts: Int32Array;
  /** Stored bytes per blob. */
  readonly sizes: Float64Array;
}

/** Digests as small integers (undefined without blobSizes: entries then cost their own size). */
function internBlobs(
  entries: readonly PruneEntry[],
  blobSizes: ReadonlyMap<string, number> | undefined,
): InternedBlobs | undefined {
  if (!blobSizes) return undefined;
  const ids = new Map<string, number>();
  const sizeList: number[] = [];
  for (const [d, size] of blobSizes) {
    ids.set(d, sizeList.length);
    sizeList.push(size);
  }
  const refs: Int32Array[] = [];
  for (const e of entries) {
    const r = new Int32Array(e.blobs.length);
    for (let k = 0; k < e.blobs.length; k++) {
      const d = e.blobs[k] as string;
      let id = ids.get(d);
      if (id === undefined) {
        // Referenced but not on disk: it costs nothing.
        id = sizeList.length;
        ids.set(d, id);
        sizeList.push(0);
      }
      r[k] = id;
    }
    refs.push(r);
  }
  const counts = new Int32Array(sizeList.length);
  for (const r of refs) for (const b of r) counts[b] = (counts[b] as number) + 1;
  return { refs, counts, sizes: Float64Array.from(sizeList) };
}

function pushTo(map: Map<string, number[]>, key: string, i: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [i]);
  else list.push(i);
}

/** Deleted entries and bytes per reason, in DELETE_REASONS order (reasons with none left out). */
export function totalsByReason(
  plan: Pick<PrunePlan, 'deletions'>,
): { reason: DeleteReason; entries: number; bytes: number }[] {
  return DELETE_REASONS.map((reason) => {
    const ds = plan.deletions.filter((d) => d.reason === reason);
    return { reason, entries: ds.length, bytes: ds.reduce((a, d) => a + d.freedBytes, 0) };
  }).filter((t) => t.entries > 0);
}

/** The prune limits a PruneConfig describes, with this job's pinned keys. */
export function limitsOf(
  config: {
    readonly maxSizeBytes: number | null;
    readonly maxAgeMs: number | null;
    readonly ttl: { readonly contentMs: number | null };
    readonly keepVersions: number;
  },
  pinnedKeys: readonly string[] = [],
): PruneLimits {
  return {
    maxSizeBytes: config.maxSizeBytes,
    maxAgeMs: config.maxAgeMs,
    contentTtlMs: config.ttl.contentMs,
    keepVersions: config.keepVersions,
    pinnedKeys,
  };
}

/** cleanup-interval: prune when none has run yet, or `intervalMs` has passed since the last. */
export function pruneDue(
  lastPruneMs: number | undefined,
  intervalMs: number,
  now: number,
): boolean {
  return lastPruneMs === undefined || intervalMs <= 0 || now - lastPruneMs >= intervalMs;
}

/** The entries that need one of the blobs `gone` (missing, or corrupt and deleted). */
export function planDropBroken(
  entries: readonly EntryFacts[],
  gone: ReadonlySet<string>,
): Verdict[] {
  return entries
    .filter((e) => e.blobs.some((d) => gone.has(d)))
    .map((e) => ({ target: e.key, reason: 'missing-blob', bytes: 0 }));
}

/**
 * verify --repair: corrupt blobs go; an entry stays when verify found it sound and every blob it
 * references is on disk (its sizes rebuild the index); the others go, and so does every entry
 * directory no staying entry owns (the dropped entries' and strays).
 */
export function planRepair(f: RepairFacts): RepairPlan {
  const bad = new Set(f.badEntries);
  const gone = new Set([...f.missingBlobs, ...f.corruptBlobs]);
  const keep: EntryFacts[] = [];
  const keptBlobSizes = new Map<string, number>();
  const entries: Verdict[] = [];
  for (const e of f.entries) {
    let reason: Verdict['reason'] | undefined = bad.has(e.key) ? 'bad-entry' : undefined;
    if (
      reason === undefined &&
      e.blobs.some((d) => gone.has(d) || f.blobSizes.get(d) === undefined)
    ) {
      reason = 'missing-blob';
    }
    if (reason !== undefined) {
      entries.push({ target: e.key, reason, bytes: 0 });
      continue;
    }
    keep.push(e);
    for (const d of e.blobs) keptBlobSizes.set(d, f.blobSizes.get(d) as number);
  }
  const keptDirs = new Set(keep.map((e) => e.dir));
  const dirs: Verdict[] = [];
  const seen = new Set<string>();
  for (const e of f.entries) {
    if (keptDirs.has(e.dir) || seen.has(e.dir)) continue;
    seen.add(e.dir);
    dirs.push({ target: e.dir, reason: bad.has(e.key) ? 'bad-entry' : 'missing-blob', bytes: 0 });
  }
  for (const rel of f.entryDirs) {
    if (keptDirs.has(rel) || seen.has(rel)) continue;
    seen.add(rel);
    dirs.push({ target: rel, reason: 'stray-dir', bytes: 0 });
  }
  const blobs: Verdict[] = f.corruptBlobs.map((d) => ({
    target: d,
    reason: 'corrupt-blob',
    bytes: f.blobSizes.get(d) ?? 0,
  }));
  return { keep, keptBlobSizes, blobs, entries, dirs };
}

/**
 * Blob files no staying entry references and older than `minAgeMs` (a running save may be about
 * to reference a younger one). `files`: digest and mtime of each unreferenced blob file.
 */
export function planOrphanBlobs(
  files: readonly { digest: string; mtimeMs: number; size: number }[],
  referenced: ReadonlySet<string>,
  now: number,
  minAgeMs: number,
): Verdict[] {
  const cutoff = now - minAgeMs;
  return files
    .filter((b) => !referenced.has(b.digest) && b.mtimeMs <= cutoff)
    .map((b) => ({ target: b.digest, reason: 'orphan-blob', bytes: b.size }));
}

/**
 * What an older store left (old-layout/'s directories, an unpacked/ of earlier versions; names
 * relative to the store's root): none of it is read by this version, so all of it goes.
 */
export function planSweepOldLayout(found: readonly { name: string; bytes: number }[]): Verdict[] {
  return found.map((o) => ({ target: o.name, reason: 'old-layout', bytes: o.bytes }));
}
