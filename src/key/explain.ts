/**
 * Explain: what changed between two key manifests (the matched or nearest entry's, and the one
 * just computed). Pure. The Explanation is plain JSON (it becomes the `explain` output);
 * formatExplanation renders it as short markdown for the log and the job summary.
 *
 * Env variables are named, never valued: the manifest holds only hashes of their values.
 */
import { sortBytes } from '../util/bytes.js';
import type { KeyComponent, KeyManifest } from './types.js';

/** Longest list of paths or values kept per category; counts are always complete. */
export const EXPLAIN_CAP = 50;

export interface CappedList {
  readonly count: number;
  /** The first EXPLAIN_CAP items in byte order. */
  readonly items: readonly string[];
}

export interface ValueChange {
  readonly name: string;
  /** Absent when the item is new. */
  readonly old?: string;
  /** Absent when the item is gone. */
  readonly new?: string;
}

export interface DependencyChanges {
  readonly lockfile: string;
  readonly added: readonly ValueChange[];
  readonly removed: readonly ValueChange[];
  readonly changed: readonly ValueChange[];
  /** Changes beyond the cap, not listed. */
  readonly more: number;
}

export interface Explanation {
  /** False when there was no previous manifest to compare with. */
  readonly compared: boolean;
  /** True when the key hashes would differ. */
  readonly changed: boolean;
  readonly summary: string;
  readonly schema?: ValueChange;
  /** Component names added, removed, or whose hash changed. */
  readonly components: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly changed: readonly string[];
  };
  /** name, version, platform, variant. */
  readonly fields: readonly ValueChange[];
  readonly files: {
    readonly added: CappedList;
    readonly removed: CappedList;
    readonly modified: CappedList;
  };
  /** Config values by flattened path (`a.b.c`), as canonical JSON. */
  readonly config: readonly ValueChange[];
  readonly dependencies: readonly DependencyChanges[];
  /** Names of env variables whose value (or set/unset) changed. */
  readonly env: readonly string[];
  /** Toolchain commands whose output changed: first lines of output. */
  readonly toolchain: readonly ValueChange[];
  /** Packages (`dep:`) whose key changed: key strings. */
  readonly deps: readonly ValueChange[];
}

const FIELD_KINDS = new Set(['name', 'version', 'platform', 'variant', 'paths']);

export function explain(previous: KeyManifest | undefined, current: KeyManifest): Explanation {
  if (previous === undefined) {
    return {
      ...empty(),
      compared: false,
      changed: true,
      summary: 'No previous entry to compare with: nothing to explain.',
    };
  }
  const before = byName(previous.components);
  const after = byName(current.components);
  const added = sortBytes([...after.keys()].filter((n) => !before.has(n)));
  const removed = sortBytes([...before.keys()].filter((n) => !after.has(n)));
  const changedNames = sortBytes(
    [...after.keys()].filter((n) => before.has(n) && before.get(n)?.hash !== after.get(n)?.hash),
  );
  const touched = new Set([...added, ...removed, ...changedNames]);
  const sameSchema = previous.schema === current.schema;

  const valueChanges = (kind: string, strip: string): ValueChange[] =>
    sortBytes([...touched])
      .map((n) => ({ n, c: after.get(n) ?? before.get(n) }))
      .filter(({ c }) => c?.kind === kind)
      .map(({ n }) => change(n.slice(strip.length), before.get(n)?.value, after.get(n)?.value));

  const fields = sortBytes([...touched])
    .filter((n) => FIELD_KINDS.has(after.get(n)?.kind ?? before.get(n)?.kind ?? ''))
    .map((n) => change(n, before.get(n)?.value, after.get(n)?.value));

  const files = sameSchema ? diffFiles(previous.files ?? {}, current.files ?? {}) : undefined;
  const config = touched.has('config')
    ? diffMaps(previous.config ?? {}, current.config ?? {}).slice(0, EXPLAIN_CAP)
    : [];
  const dependencies: DependencyChanges[] = [];
  for (const n of sortBytes([...touched])) {
    if (!n.startsWith('lockfile:')) continue;
    const rel = n.slice('lockfile:'.length);
    const old = previous.dependencies?.[rel];
    const now = current.dependencies?.[rel];
    if (old === undefined && now === undefined) continue;
    const all = diffMaps(old ?? {}, now ?? {});
    const shown = all.slice(0, EXPLAIN_CAP);
    dependencies.push({
      lockfile: rel,
      added: shown.filter((c) => c.old === undefined),
      removed: shown.filter((c) => c.new === undefined),
      changed: shown.filter((c) => c.old !== undefined && c.new !== undefined),
      more: all.length - shown.length,
    });
  }
  const explanation: Explanation = {
    compared: true,
    changed: touched.size > 0 || !sameSchema,
    summary: '',
    ...(sameSchema
      ? {}
      : { schema: change('schema', String(previous.schema), String(current.schema)) }),
    components: { added, removed, changed: changedNames },
    fields,
    files: files ?? empty().files,
    config,
    dependencies,
    env: valueChanges('env', 'env:').map((c) => c.name),
    toolchain: valueChanges('toolchain', 'toolchain:'),
    deps: valueChanges('dep', 'dep:'),
  };
  return { ...explanation, summary: summarise(explanation) };
}

/** Short markdown: one bullet per kind of change, capped lists inline. */
export function formatExplanation(e: Explanation): string {
  const lines = [`**Why the key changed:** ${e.summary}`];
  if (!e.compared || !e.changed) return lines.join('\n');
  const code = (s: string | undefined) => (s === undefined ? '(none)' : `\`${s}\``);
  const arrow = (c: ValueChange) => `${code(c.old)} -> ${code(c.new)}`;
  if (e.schema !== undefined) {
    lines.push(`- key schema ${arrow(e.schema)}: every key is different, files not compared`);
  }
  for (const f of e.fields) lines.push(`- ${f.name}: ${arrow(f)}`);
  const fileParts: string[] = [];
  for (const [what, list] of [
    ['modified', e.files.modified],
    ['added', e.files.added],
    ['removed', e.files.removed],
  ] as const) {
    if (list.count === 0) continue;
    const more = list.count - list.items.length;
    fileParts.push(
      `  - ${list.count} ${what}: ${list.items.map(code).join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
    );
  }
  if (fileParts.length > 0) lines.push('- files:', ...fileParts);
  if (e.config.length > 0) {
    lines.push(`- config: ${e.config.map((c) => `${c.name} ${arrow(c)}`).join('; ')}`);
  } else if (e.components.changed.includes('config')) {
    lines.push('- config: changed');
  }
  for (const d of e.dependencies) {
    const parts = [
      ...d.changed.map((c) => `${c.name} ${c.old ?? ''} -> ${c.new ?? ''}`),
      ...d.added.map((c) => `+${c.name} ${c.new ?? ''}`),
      ...d.removed.map((c) => `-${c.name} ${c.old ?? ''}`),
    ];
    if (d.more > 0) parts.push(`and ${d.more} more`);
    lines.push(`- dependencies in ${code(d.lockfile)}: ${parts.join('; ') || 'changed'}`);
  }
  for (const name of [...e.components.added, ...e.components.removed, ...e.components.changed]) {
    if (!name.startsWith('lockfile:')) continue;
    const rel = name.slice('lockfile:'.length);
    if (e.dependencies.some((d) => d.lockfile === rel)) continue;
    lines.push(`- lockfile ${code(rel)} changed`);
  }
  if (e.env.length > 0) lines.push(`- env values changed: ${e.env.join(', ')}`);
  for (const t of e.toolchain) lines.push(`- toolchain ${code(t.name)}: ${arrow(t)}`);
  for (const d of e.deps) lines.push(`- package ${code(d.name)} changed`);
  return lines.join('\n');
}

/**
 * The sources a build must see as changed since the entry built from `previous`, for make-style
 * tools that compare mtimes (src/run/mtimes.ts gives them an mtime newer than the restored
 * outputs). Only paths of `current` are named (files of this workspace, never a path read from
 * an entry): source files modified or added, and lockfiles whose component changed. A removed
 * file is not named: nothing is left to touch, as in a local checkout where it was deleted.
 */
export interface SourceChanges {
  /** Workspace-relative posix paths, in byte order. */
  readonly paths: readonly string[];
  /**
   * Set when the entry differs in something no file shows (no manifest to compare, key schema,
   * name, version, platform, variant, paths, config, env, toolchain, a dependency's key): every
   * source then counts as changed, and `paths` names them all. Says why.
   */
  readonly everything?: string;
}

/**
 * Component kinds a build can see through files: their changes are named file by file. A
 * changed `dep:` is not one of them: the dependency's outputs may be restored whole (an exact
 * hit of its own) with no mtime newer than this package's outputs.
 */
const FILE_KINDS = new Set(['sources', 'lockfile']);

export function changedSources(
  previous: KeyManifest | undefined,
  current: KeyManifest,
): SourceChanges {
  const lockfiles = (m: KeyManifest): Map<string, string> =>
    new Map(
      m.components
        .filter((c) => c.kind === 'lockfile')
        .map((c) => [c.name.slice('lockfile:'.length), c.hash]),
    );
  const now = lockfiles(current);
  const all = (why: string): SourceChanges => ({
    paths: sortBytes([...new Set([...Object.keys(current.files), ...now.keys()])]),
    everything: why,
  });
  if (previous === undefined) return all('the entry has no key manifest to compare with');
  if (previous.schema !== current.schema) return all('the key schema changed');
  const before = byName(previous.components);
  const after = byName(current.components);
  const unseen = sortBytes(
    [...new Set([...before.keys(), ...after.keys()])].filter((n) => {
      const b = before.get(n);
      const a = after.get(n);
      return b?.hash !== a?.hash && !FILE_KINDS.has(a?.kind ?? b?.kind ?? '');
    }),
  );
  if (unseen.length > 0) return all(`${unseen.join(', ')} changed`);
  const files = fileChanges(previous.files, current.files);
  const old = lockfiles(previous);
  const lock = [...now].filter(([rel, hash]) => old.get(rel) !== hash).map(([rel]) => rel);
  return { paths: sortBytes([...new Set([...files.modified, ...files.added, ...lock])]) };
}

/**
 * A KeyManifest read back from an entry's meta.json (untrusted JSON), or undefined when it does
 * not have the shape explain needs.
 */
export function asKeyManifest(raw: unknown): KeyManifest | undefined {
  if (!isRecord(raw) || typeof raw['schema'] !== 'number') return undefined;
  const components = raw['components'];
  if (!Array.isArray(components)) return undefined;
  for (const c of components as unknown[]) {
    if (!isRecord(c) || typeof c['name'] !== 'string' || typeof c['hash'] !== 'string') {
      return undefined;
    }
    if (typeof c['kind'] !== 'string') return undefined;
    if (c['value'] !== undefined && typeof c['value'] !== 'string') return undefined;
  }
  if (!isStringMap(raw['files'])) return undefined;
  if (raw['config'] !== undefined && !isStringMap(raw['config'])) return undefined;
  const deps = raw['dependencies'];
  if (deps !== undefined && (!isRecord(deps) || !Object.values(deps).every(isStringMap))) {
    return undefined;
  }
  return raw as unknown as KeyManifest;
}

// ---- helpers ---------------------------------------------------------------------------------

function empty(): Omit<Explanation, 'compared' | 'changed' | 'summary'> {
  const none: CappedList = { count: 0, items: [] };
  return {
    components: { added: [], removed: [], changed: [] },
    fields: [],
    files: { added: none, removed: none, modified: none },
    config: [],
    dependencies: [],
    env: [],
    toolchain: [],
    deps: [],
  };
}

function change(name: string, old: string | undefined, now: string | undefined): ValueChange {
  return {
    name,
    ...(old !== undefined ? { old } : {}),
    ...(now !== undefined ? { new: now } : {}),
  };
}

function byName(components: readonly KeyComponent[]): Map<string, KeyComponent> {
  return new Map(components.map((c) => [c.name, c]));
}

function own(map: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

/** Every key whose value differs (or exists on one side only), in byte order. */
function diffMaps(
  old: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): ValueChange[] {
  // (Only the keys that differ are sorted: a miss after a one-file change sorts one name.)
  const differ = [...new Set([...Object.keys(old), ...Object.keys(now)])].filter(
    (k) => own(old, k) !== own(now, k),
  );
  return sortBytes(differ).map((k) => change(k, own(old, k), own(now, k)));
}

/** Files added, removed and modified, each list complete and in byte order. */
function fileChanges(
  old: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): { added: string[]; removed: string[]; modified: string[] } {
  const added: string[] = [];
  const removed: string[] = [];
  const modified: string[] = [];
  for (const c of diffMaps(old, now)) {
    if (c.old === undefined) added.push(c.name);
    else if (c.new === undefined) removed.push(c.name);
    else modified.push(c.name);
  }
  return { added, removed, modified };
}

function diffFiles(
  old: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): Explanation['files'] {
  const { added, removed, modified } = fileChanges(old, now);
  const cap = (list: string[]): CappedList => ({
    count: list.length,
    items: list.slice(0, EXPLAIN_CAP), // (in byte order already: diffMaps sorts)
  });
  return { added: cap(added), removed: cap(removed), modified: cap(modified) };
}

function summarise(e: Explanation): string {
  if (!e.changed) return 'nothing changed (same key).';
  const parts: string[] = [];
  if (e.schema !== undefined) parts.push(`key schema ${e.schema.old} -> ${e.schema.new}`);
  for (const f of e.fields) parts.push(f.name);
  const fileCount = e.files.added.count + e.files.removed.count + e.files.modified.count;
  if (fileCount > 0) parts.push(`${fileCount} file${fileCount === 1 ? '' : 's'}`);
  else if (e.components.changed.includes('sources')) parts.push('sources');
  if (e.components.changed.includes('config') || e.config.length > 0) parts.push('config');
  const lockfiles = [...e.components.added, ...e.components.removed, ...e.components.changed]
    .filter((n) => n.startsWith('lockfile:'))
    .map((n) => n.slice('lockfile:'.length));
  if (lockfiles.length > 0) parts.push(`dependencies (${lockfiles.join(', ')})`);
  if (e.env.length > 0) parts.push(`env (${e.env.join(', ')})`);
  if (e.toolchain.length > 0) parts.push('toolchain');
  if (e.deps.length > 0) parts.push(`packages (${e.deps.map((d) => d.name).join(', ')})`);
  return parts.length > 0 ? `changed: ${parts.join(', ')}.` : 'changed.';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}
