/**
 * Lookup counters (`<root>/stats.json`) and named markers (`<root>/markers/<name>`), both small
 * JSON files written atomically. Counters are best-effort under concurrency: a bump that cannot
 * take its lock quickly is dropped rather than slowing a restore.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { withLock } from './lock.js';

export interface LookupCounters {
  readonly hits: number;
  readonly misses: number;
}

const MARKER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export async function readCounters(file: string): Promise<LookupCounters> {
  try {
    const raw: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
    const o = raw as Record<string, unknown>;
    if (typeof raw === 'object' && raw !== null && isCount(o['hits']) && isCount(o['misses'])) {
      return { hits: o['hits'], misses: o['misses'] };
    }
  } catch {
    // missing or damaged: counting starts again
  }
  return { hits: 0, misses: 0 };
}

export async function bumpCounter(file: string, tmpDir: string, hit: boolean): Promise<void> {
  try {
    await withLock(
      { target: file, lockPath: `${file}.lock`, timeoutMs: 2_000, staleMs: 5_000 },
      async () => {
        const c = await readCounters(file);
        const next = hit ? { ...c, hits: c.hits + 1 } : { ...c, misses: c.misses + 1 };
        await writeFileAtomic(file, `${JSON.stringify({ schema: 1, ...next })}\n`, tmpDir);
      },
    );
  } catch (err) {
    core.debug(`clyde-cache: lookup not counted: ${err}`);
  }
}

export function markerPath(dir: string, name: string): string {
  if (!MARKER_NAME.test(name)) {
    throw new StoreError(`marker name must match ${MARKER_NAME}, got ${JSON.stringify(name)}`);
  }
  return path.join(dir, name);
}

export async function readMarker(dir: string, name: string): Promise<number | undefined> {
  try {
    const raw: unknown = JSON.parse(await fs.readFile(markerPath(dir, name), 'utf8'));
    const at = (raw as Record<string, unknown> | null)?.['at'];
    return typeof at === 'number' && Number.isFinite(at) && at >= 0 ? at : undefined;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    return undefined;
  }
}

export async function writeMarker(
  dir: string,
  tmpDir: string,
  name: string,
  epochMs: number,
): Promise<void> {
  if (!Number.isFinite(epochMs) || epochMs < 0) throw new StoreError(`bad marker time ${epochMs}`);
  await writeFileAtomic(markerPath(dir, name), `${JSON.stringify({ at: epochMs })}\n`, tmpDir);
}
