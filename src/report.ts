/**
 * Everything the user sees at the end of a step: outputs and the job summary. Rendered in one
 * place from a structured report, so restore and save describe themselves the same way.
 */
import * as core from '@actions/core';
import type { Tier } from './state.js';

export const Outputs = {
  CacheHit: 'cache-hit',
  CacheKey: 'cache-key',
  MatchedKey: 'matched-key',
  Tier: 'tier',
  HitKind: 'hit-kind',
} as const;

export type HitKind = 'exact' | 'fallback' | 'none';

export interface RestoreReport {
  readonly key: string;
  readonly matchedKey: string;
  readonly tier: Tier;
  readonly hitKind: HitKind;
  readonly files: number;
  readonly bytes: number;
  readonly downloadedBytes: number;
  readonly timings: Readonly<Record<string, number>>;
  readonly notes: readonly string[];
}

export interface SaveReport {
  readonly key: string;
  readonly local: string;
  readonly remote: string;
  readonly files: number;
  readonly bytes: number;
  readonly newBytes: number;
  readonly uploadedBytes: number;
  readonly timings: Readonly<Record<string, number>>;
  readonly notes: readonly string[];
}

export function setRestoreOutputs(
  r: Pick<RestoreReport, 'key' | 'matchedKey' | 'tier' | 'hitKind'>,
): void {
  core.setOutput(Outputs.CacheHit, r.hitKind === 'exact' ? 'true' : 'false');
  core.setOutput(Outputs.CacheKey, r.key);
  core.setOutput(Outputs.MatchedKey, r.matchedKey);
  core.setOutput(Outputs.Tier, r.tier);
  core.setOutput(Outputs.HitKind, r.hitKind);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function formatTimings(t: Readonly<Record<string, number>>): string {
  return Object.entries(t)
    .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)} s`)
    .join(', ');
}

function code(s: string): string {
  return s === '' ? '—' : `<code>${s.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</code>`;
}

export async function writeRestoreSummary(r: RestoreReport): Promise<void> {
  const rows: [string, string][] = [
    ['Key', code(r.key)],
    ['Matched key', code(r.matchedKey)],
    ['Tier', r.tier],
    ['Hit', r.hitKind],
    ['Restored', `${r.files} files, ${formatBytes(r.bytes)}`],
    ['Downloaded', formatBytes(r.downloadedBytes)],
    ['Time', formatTimings(r.timings)],
  ];
  await writeTable('clyde-cache restore', rows, r.notes);
}

export async function writeSaveSummary(r: SaveReport): Promise<void> {
  const rows: [string, string][] = [
    ['Key', code(r.key)],
    ['Local store', r.local],
    ['Runner cache', r.remote],
    ['Saved', `${r.files} files, ${formatBytes(r.bytes)}`],
    ['New in local store', formatBytes(r.newBytes)],
    ['Uploaded', formatBytes(r.uploadedBytes)],
    ['Time', formatTimings(r.timings)],
  ];
  await writeTable('clyde-cache save', rows, r.notes);
}

async function writeTable(
  title: string,
  rows: [string, string][],
  notes: readonly string[],
): Promise<void> {
  if (!process.env['GITHUB_STEP_SUMMARY']) return;
  try {
    const s = core.summary.addHeading(title, 3).addTable([
      [
        { data: 'Field', header: true },
        { data: 'Value', header: true },
      ],
      ...rows.map(([k, v]) => [k, v]),
    ]);
    if (notes.length > 0) s.addList([...notes]);
    await s.write();
  } catch (err) {
    core.info(`Could not write the job summary: ${(err as Error).message}`);
  }
}

/** A stopwatch for phase timings. */
export class Timer {
  private readonly t: Record<string, number> = {};
  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.t[phase] = (this.t[phase] ?? 0) + (performance.now() - start);
    }
  }
  get timings(): Readonly<Record<string, number>> {
    return { ...this.t };
  }
}
