/**
 * Benchmark of the prune policy: 10k entries and a million blobs (100 new ones per entry, plus
 * 20 shared with the package's previous build), planned with every rule on, including an LRU
 * pass down to a budget. Baseline: planning in under one second.
 *
 *   npm run build && node build/bench/prune.js [entries] [blobs]
 */
import { performance } from 'node:perf_hooks';
import { planPrune } from '../src/prune/policy.js';
import type { PruneEntry, PruneSnapshot } from '../src/prune/types.js';

const BASELINE_MS = 1000;
const DAY = 86_400_000;

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function digest(i: number): string {
  return i.toString(16).padStart(64, '0');
}

export function makeSnapshot(entryCount: number, blobCount: number, now: number): PruneSnapshot {
  const rand = rng(42);
  const perEntry = Math.max(1, Math.round(blobCount / entryCount));
  const blobSizes = new Map<string, number>();
  const entries: PruneEntry[] = [];
  let nextBlob = 0;
  let previous: string[] = [];
  for (let i = 0; i < entryCount; i++) {
    const pkg = `pkg${i % 500}`;
    if (i % 500 === 0) previous = [];
    const blobs: string[] = [];
    // Its own new blobs, plus a fifth as many shared with the package's previous build.
    for (let b = 0; b < perEntry; b++) {
      const d = digest(nextBlob++);
      blobSizes.set(d, 1000 + Math.floor(rand() * 100_000));
      blobs.push(d);
    }
    for (let b = 0; b < perEntry / 5 && previous.length > 0; b++) {
      blobs.push(previous[Math.floor(rand() * previous.length)] as string);
    }
    previous = blobs;
    const created = now - Math.floor(rand() * 60 * DAY);
    entries.push({
      key: `clyde-${pkg}-linux_x64-release-${digest(i)}`,
      package: pkg,
      version: String(Math.floor(i / 500)),
      platform: 'linux_x64',
      variant: 'release',
      sizeBytes: 0,
      createdAt: created,
      lastAccessAt: created + Math.floor(rand() * (now - created)),
      blobs,
    });
  }
  return { entries, blobSizes };
}

function main(): void {
  const entryCount = Number(process.argv[2] ?? 10_000);
  const blobCount = Number(process.argv[3] ?? 1_000_000);
  const now = Date.UTC(2025, 5, 1);
  const snapshot = makeSnapshot(entryCount, blobCount, now);
  const total = [...snapshot.blobSizes!.values()].reduce((a, b) => a + b, 0);
  const limits = {
    maxSizeBytes: Math.floor(total / 3),
    maxAgeMs: 45 * DAY,
    contentTtlMs: 20 * DAY,
    keepVersions: 1,
    pinnedKeys: [snapshot.entries[0]!.key],
  };
  const times: number[] = [];
  let plan = planPrune(snapshot, limits, now);
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    plan = planPrune(snapshot, limits, now);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] as number;
  const refs = snapshot.entries.reduce((a, e) => a + e.blobs.length, 0);
  console.log(
    `prune plan: ${entryCount} entries, ${snapshot.blobSizes!.size} blobs (${refs} references): ` +
      `median ${median.toFixed(0)} ms, best ${times[0]!.toFixed(0)} ms (baseline < ${BASELINE_MS} ms); ` +
      `deletes ${plan.deletions.length}, keeps ${plan.kept.length} a rule wanted, ` +
      `${(plan.bytesBefore / 1e9).toFixed(1)} GB -> ${(plan.bytesAfter / 1e9).toFixed(1)} GB`,
  );
  if (median > BASELINE_MS) {
    console.log(`prune plan: over the ${BASELINE_MS} ms baseline`);
    process.exitCode = 1;
  }
}

main();
