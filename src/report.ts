/**
 * Everything the user sees at the end of a step: outputs and the job summary. Rendered in one
 * place from a structured report, so restore and save describe themselves the same way.
 */
import * as core from '@actions/core';
import { AsyncLocalStorage } from 'node:async_hooks';
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
  /** Saved after a failed job, under a key only a fallback restores. */
  readonly fallbackOnly?: boolean;
  readonly local: string;
  readonly remote: string;
  /** The bucket tier's outcome, when a bucket is configured. */
  readonly bucket?: string;
  readonly files: number;
  readonly bytes: number;
  readonly newBytes: number;
  readonly uploadedBytes: number;
}

// ---- the job summary ---------------------------------------------------------------------------
//
// GitHub renders the summary as GitHub-flavoured markdown: an HTML block (the tables) runs until
// a blank line, and markdown inside it is not rendered, so every block below is separated by a
// blank line, and the markdown parts (explanations, notes) are never put inside HTML elements.

/**
 * The phases in the order they run, with the names the summary gives them: a restore's (key,
 * open, lookup, download, restore from it, keep it for post or import it into the local store,
 * restore from the local store: a nested phase's time is not counted in the one around it) and
 * a save's (key, open, local, lookup, upload: the pack is read from the store as it is sent,
 * prune) in one order.
 */
const PHASES: readonly (readonly [string, string])[] = [
  ['key', 'Key'],
  ['open', 'Open local store'],
  ['local', 'Save local'],
  ['lookup', 'Lookup'],
  ['download', 'Download'],
  ['restore pack', 'Restore from the download'],
  ['adopt', 'Keep for post'],
  ['import', 'Import'],
  ['restore', 'Restore'],
  ['upload', 'Upload'],
  ['prune', 'Prune'],
];

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The step's time per phase as a one-row table (phases in the order they run, any other after
 * them, then the total); empty when nothing was timed.
 */
function phaseTable(t: Readonly<Record<string, number>>): string {
  const known = new Set(PHASES.map(([id]) => id));
  const cols: [string, number][] = [
    ...PHASES.filter(([id]) => t[id] !== undefined).map(([id, name]): [string, number] => [
      name,
      t[id] ?? 0,
    ]),
    ...Object.entries(t).filter(([id]) => !known.has(id)),
  ];
  if (cols.length === 0) return '';
  const total = cols.reduce((n, [, ms]) => n + ms, 0);
  return table(
    ['Phase', ...cols.map(([name]) => escapeHtml(name)), 'Total'],
    [['Time', ...cols.map(([, ms]) => seconds(ms)), seconds(total)]],
  );
}

function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** Text shown as itself in markdown: HTML and markdown punctuation escaped. */
export function markdownText(s: string): string {
  return escapeHtml(s).replace(/[\\`*[\]]/g, (c) => `\\${c}`);
}

/**
 * A key short enough for a table column: the prefix and the hash's first 8 hex digits
 * (`clyde-demo-linux_x64-default-1a2b3c4d…`); the full key is in the cell's title and in the
 * summary's "Full keys" details.
 */
export function shortKey(key: string): string {
  if (/-[0-9a-f]{64}$/.test(key)) return `${key.slice(0, -56)}…`;
  return key.length > 48 ? `${key.slice(0, 47)}…` : key;
}

function keyCell(key: string): string {
  return key === '' ? '—' : `<code title="${escapeHtml(key)}">${escapeHtml(shortKey(key))}</code>`;
}

/** The full keys, collapsed: a markdown list inside details (blank lines keep it markdown). */
function fullKeys(lines: readonly string[]): string {
  if (lines.length === 0) return '';
  return `<details><summary>Full keys</summary>\n\n${lines.join('\n')}\n\n</details>`;
}

/** Time per phase (a table), then the step's warnings under their own heading (its own list). */
function timeAndNotes(timings: Readonly<Record<string, number>>, notes: readonly string[]): string {
  const time = phaseTable(timings);
  if (notes.length === 0) return time;
  const warned = `#### Warnings\n\n${notes.map((n) => `- ${markdownText(n)}`).join('\n')}`;
  return time === '' ? warned : `${time}\n\n${warned}`;
}

export async function writeRestoreSummary(
  results: readonly PackageOutcome[],
  timings: Readonly<Record<string, number>>,
  notes: readonly string[],
): Promise<void> {
  const rows: string[][] = results.map((r) => [
    escapeHtml(r.name),
    keyCell(r.key),
    r.tier,
    r.hitKind,
    keyCell(r.matchedKey),
    `${r.files} files, ${formatBytes(r.bytes)}`,
    formatBytes(r.downloadedBytes),
  ]);
  const keys = results.map(
    (r) =>
      `- ${markdownText(r.name)}: \`${r.key}\`` +
      (r.matchedKey !== '' && r.matchedKey !== r.key ? `, restored \`${r.matchedKey}\`` : ''),
  );
  await writeSummary([
    '### clyde-cache restore',
    table(['Package', 'Key', 'Tier', 'Hit', 'Matched key', 'Restored', 'Downloaded'], rows),
    fullKeys(keys),
    ...explanationBlocks(results),
    timeAndNotes(timings, notes),
  ]);
}

/** Said when a fallback restored an entry whose inputs equal the key's: a failed job saved it. */
export const FALLBACK_ONLY_NOTE =
  'The entry restored was made from the same inputs as this key, by a job whose build failed ' +
  '(save: always saves such outputs where only a fallback finds them), so the build runs again.';

function explanationBlocks(results: readonly PackageOutcome[]): string[] {
  return results
    .filter((r) => r.formatted !== undefined)
    .map((r) => {
      const heading = `#### Why ${markdownText(r.name)} ${r.tier === 'none' ? 'missed' : 'fell back'}`;
      const sameInputs =
        r.hitKind === 'fallback' &&
        (r.explanation as { changed?: boolean } | undefined)?.changed === false;
      return [heading, '', r.formatted ?? '', ...(sameInputs ? ['', FALLBACK_ONLY_NOTE] : [])].join(
        '\n',
      );
    });
}

export async function writeSaveSummary(
  reports: readonly SaveReport[],
  timings: Readonly<Record<string, number>>,
  notes: readonly string[],
  extraMarkdown: readonly string[] = [],
): Promise<void> {
  const withBucket = reports.some((r) => r.bucket !== undefined);
  const rows = reports.map((r) => [
    escapeHtml(r.name),
    keyCell(r.key) + (r.fallbackOnly ? ' (fallback only: the job failed)' : ''),
    escapeHtml(r.local),
    ...(withBucket ? [escapeHtml(r.bucket ?? '')] : []),
    escapeHtml(r.remote),
    `${r.files} files, ${formatBytes(r.bytes)}`,
    formatBytes(r.newBytes),
    formatBytes(r.uploadedBytes),
  ]);
  await writeSummary([
    '### clyde-cache save',
    rows.length > 0
      ? table(
          [
            'Package',
            'Key',
            'Local store',
            ...(withBucket ? ['Bucket'] : []),
            'Runner cache',
            'Saved',
            'New in local store',
            'Uploaded',
          ],
          rows,
        )
      : 'Nothing to save: every package hit its key exactly.',
    fullKeys(reports.map((r) => `- ${markdownText(r.name)}: \`${r.key}\``)),
    timeAndNotes(timings, notes),
    extraMarkdown.join('\n'),
  ]);
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const tr = (cells: readonly string[], tag: 'th' | 'td') =>
    `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
  return `<table>${tr(header, 'th')}${rows.map((r) => tr(r, 'td')).join('')}</table>`;
}

/** Appends the blocks, each separated by a blank line, to the step summary. */
async function writeSummary(blocks: readonly string[]): Promise<void> {
  if (!process.env['GITHUB_STEP_SUMMARY']) return;
  try {
    const text = blocks.filter((b) => b.trim() !== '').join('\n\n');
    await core.summary.addRaw(`${text}\n\n`).write();
  } catch (err) {
    core.info(`Could not write the job summary: ${(err as Error).message}`);
  }
}

/**
 * A stopwatch for phase timings. Phases may nest (a lookup inside a restore): the time of an
 * inner phase is the inner phase's alone, taken off the phase around it, so the phases add up
 * to the step's timed work and each one says where its own time went. The phase around is
 * found through the async context, so phases that run side by side each count their own time
 * (a phase around overlapping ones then shows no less than zero).
 */
export class Timer {
  private readonly t: Record<string, number> = {};
  private readonly current = new AsyncLocalStorage<{ phase: string }>();

  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const outer = this.current.getStore();
    const start = performance.now();
    try {
      return await this.current.run({ phase }, fn);
    } finally {
      const ms = performance.now() - start;
      this.t[phase] = (this.t[phase] ?? 0) + ms;
      if (outer) this.t[outer.phase] = (this.t[outer.phase] ?? 0) - ms;
    }
  }

  get timings(): Readonly<Record<string, number>> {
    return Object.fromEntries(Object.entries(this.t).map(([k, ms]) => [k, Math.max(0, ms)]));
  }
}
