/**
 * Everything the user sees at the end of a step: outputs and the job summary. Rendered in one
 * place from a structured report, so restore and save describe themselves the same way.
 */
import * as core from '@actions/core';
import type { Tier } from './state.js';
import { formatBytes } from './util/bytes.js';

export const Outputs = {
  CacheHit: 'cache-hit',
  CacheKey: 'cache-key',
  MatchedKey: 'matched-key',
  Tier: 'tier',
  HitKind: 'hit-kind',
  Packages: 'packages',
  PackagesToBuild: 'packages-to-build',
  Explain: 'explain',
} as const;

export type HitKind = 'exact' | 'fallback' | 'none';

/** What main did for one package. */
export interface PackageOutcome {
  readonly name: string;
  readonly key: string;
  readonly matchedKey: string;
  readonly tier: Tier;
  readonly hitKind: HitKind;
  readonly files: number;
  readonly bytes: number;
  readonly downloadedBytes: number;
  /** Why the key missed or fell back (undefined on an exact hit), and the same as text. */
  readonly explanation?: unknown;
  readonly formatted?: string;
}

/**
 * Outputs. With one package they describe it; with several, `cache-hit` is true only when every
 * package hit exactly, `tier` is the one tier every hit came from ('mixed' otherwise), keys are
 * listed one per line in build order, and `packages` / `packages-to-build` carry the detail.
 */
export function setRestoreOutputs(results: readonly PackageOutcome[]): void {
  const tiers = new Set(results.filter((r) => r.tier !== 'none').map((r) => r.tier));
  const kinds = new Set(results.map((r) => r.hitKind));
  const tier = tiers.size === 0 ? 'none' : tiers.size === 1 ? ([...tiers][0] ?? 'none') : 'mixed';
  const hitKind: HitKind =
    results.length > 0 && kinds.size === 1 && kinds.has('exact')
      ? 'exact'
      : tiers.size === 0
        ? 'none'
        : 'fallback';
  core.setOutput(Outputs.CacheHit, hitKind === 'exact' ? 'true' : 'false');
  core.setOutput(Outputs.CacheKey, results.map((r) => r.key).join('\n'));
  core.setOutput(Outputs.MatchedKey, results.map((r) => r.matchedKey).join('\n'));
  core.setOutput(Outputs.Tier, tier);
  core.setOutput(Outputs.HitKind, hitKind);
  core.setOutput(
    Outputs.Packages,
    JSON.stringify(
      Object.fromEntries(
        results.map((r) => [
          r.name,
          {
            key: r.key,
            matchedKey: r.matchedKey,
            tier: r.tier,
            hitKind: r.hitKind,
            build: r.hitKind !== 'exact',
          },
        ]),
      ),
    ),
  );
  core.setOutput(
    Outputs.PackagesToBuild,
    JSON.stringify(results.filter((r) => r.hitKind !== 'exact').map((r) => r.name)),
  );
  const explained = results.filter((r) => r.explanation !== undefined);
  core.setOutput(
    Outputs.Explain,
    results.length === 1
      ? JSON.stringify(results[0]?.explanation ?? {})
      : JSON.stringify(Object.fromEntries(explained.map((r) => [r.name, r.explanation]))),
  );
}

export interface SaveReport {
  readonly name: string;
  readonly key: string;
  readonly local: string;
  readonly remote: string;
  readonly files: number;
  readonly bytes: number;
  readonly newBytes: number;
  readonly uploadedBytes: number;
}

function formatTimings(t: Readonly<Record<string, number>>): string {
  return Object.entries(t)
    .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)} s`)
    .join(', ');
}

function code(s: string): string {
  return s === '' ? '—' : `<code>${s.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</code>`;
}

export async function writeRestoreSummary(
  results: readonly PackageOutcome[],
  timings: Readonly<Record<string, number>>,
  notes: readonly string[],
): Promise<void> {
  const rows: string[][] = results.map((r) => [
    r.name,
    code(r.key),
    r.tier,
    r.hitKind,
    code(r.matchedKey),
    `${r.files} files, ${formatBytes(r.bytes)}`,
    formatBytes(r.downloadedBytes),
  ]);
  await writeTable(
    'clyde-cache restore',
    ['Package', 'Key', 'Tier', 'Hit', 'Matched key', 'Restored', 'Downloaded'],
    rows,
    [`Time: ${formatTimings(timings)}`, ...explanationNotes(results), ...notes],
  );
}

function explanationNotes(results: readonly PackageOutcome[]): string[] {
  return results
    .filter((r) => r.explanation !== undefined && r.formatted !== undefined)
    .map((r) => `${r.name}: ${r.formatted ?? ''}`);
}

export async function writeSaveSummary(
  reports: readonly SaveReport[],
  timings: Readonly<Record<string, number>>,
  notes: readonly string[],
  extraMarkdown: readonly string[] = [],
): Promise<void> {
  const rows = reports.map((r) => [
    r.name,
    code(r.key),
    r.local,
    r.remote,
    `${r.files} files, ${formatBytes(r.bytes)}`,
    formatBytes(r.newBytes),
    formatBytes(r.uploadedBytes),
  ]);
  await writeTable(
    'clyde-cache save',
    ['Package', 'Key', 'Local store', 'Runner cache', 'Saved', 'New in local store', 'Uploaded'],
    rows,
    [`Time: ${formatTimings(timings)}`, ...notes],
    extraMarkdown,
  );
}

async function writeTable(
  title: string,
  header: readonly string[],
  rows: readonly (readonly string[])[],
  notes: readonly string[],
  extraMarkdown: readonly string[] = [],
): Promise<void> {
  if (!process.env['GITHUB_STEP_SUMMARY']) return;
  try {
    const s = core.summary
      .addHeading(title, 3)
      .addTable([header.map((h) => ({ data: h, header: true })), ...rows.map((r) => [...r])]);
    if (notes.length > 0) s.addList([...notes]);
    if (extraMarkdown.length > 0) s.addRaw(`\n${extraMarkdown.join('\n')}\n`);
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
