/**
 * Which files are sources, and their content ids.
 *
 * Listing: with no globs, the files git tracks under the workspace (`git ls-files`), or every
 * file under the workspace when it is not a git work tree (or git is switched off); with globs,
 * what @actions/glob matches, relative to the workspace. Always minus the cached outputs
 * (excludePaths), the lockfile components, and `.git`.
 *
 * Content id: the git blob id of the bytes (`sha1("blob <size>\0" + content)`, sha256 in a
 * sha256-object-format repository) in every path, so a tracked file that git reports unmodified
 * takes the id git already keeps in its index, and the key is the same as hashing every file.
 * A symlink is the blob id of its target string with a `link:` prefix (never followed).
 * A file we hash is hashed as git would store it: after git's clean conversion of line endings
 * (gitConversions: attributes and core.autocrlf; walkConversion without git), so the edited
 * files and the walk of a CRLF checkout give the ids git gives.
 *
 * Hashing what git cannot vouch for is hashing.ts. Without git, the walk feeds the hasher as it
 * lists (sorted, directory by directory), so reading files overlaps listing them.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as core from '@actions/core';
import * as glob from '@actions/glob';
import { InputError, errorMessage } from '../errors.js';
import { foldName } from '../store/fold.js';
import { compareBytes, toPosix } from '../util/bytes.js';
import { isInside, relativeInside, type PathRules } from '../util/fsx.js';
import { BlobHasher, hashPaths, type EolConversion, type ObjectFormat } from './hashing.js';

export { LARGE_FILE_BYTES, type ObjectFormat } from './hashing.js';

/** How the source list was obtained (for the log and the sources component's value). */
export type SourceOrigin = 'git' | 'walk' | 'glob';

export interface SourceList {
  readonly origin: SourceOrigin;
  /** Relative posix paths, byte-order sorted, unique. */
  readonly paths: readonly string[];
}

export interface SourceFile {
  readonly path: string;
  /** Git blob id of the content; `link:<blob id of the target>` for a symlink. */
  readonly id: string;
}

/** The walk lets finished batches through to the hashing workers every this many files. */
const WALK_YIELD_FILES = 1024;

/** What git says about the work tree: ids of tracked files whose content matches the index. */
interface GitState {
  readonly format: ObjectFormat;
  /** Every tracked file under the workspace (relative posix, submodules included). */
  readonly tracked: readonly string[];
  /** Tracked files git reports unmodified -> entry id (`link:` prefix for symlinks). */
  readonly clean: ReadonlyMap<string, string>;
  /** core.autocrlf: what `git add` does to the line endings of a file with no attributes. */
  readonly autocrlf: 'true' | 'input' | 'false';
}

/**
 * One listing of the workspace shared by every key computed from it (all packages of a
 * workspace file): git runs once, and each file is hashed at most once. Without git, `list()`
 * starts hashing what it lists while it walks, and `hash()` collects the ids.
 */
export class SourceIndex {
  private readonly cache = new Map<string, string | null>();
  /** Hashing started by a walk, not yet collected by hash(). */
  private pending: Promise<void> | undefined;

  private constructor(
    readonly workspace: string,
    private readonly git: GitState | undefined,
    /** Whether the workspace's filesystem takes `Out` and `out` for one name. */
    readonly folds: boolean,
    /** Without git's listing: the conversion `git add` would apply here (walkConversion). */
    private readonly walkConversion: EolConversion,
  ) {}

  /** `useGit: false` ignores git entirely (every file is hashed; the benchmark's no-git path). */
  static async open(workspace: string, useGit = true): Promise<SourceIndex> {
    if (!fs.statSync(workspace, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`The workspace ${workspace} is not a directory`);
    }
    const git = useGit ? await readGitState(workspace) : undefined;
    const conversion = git === undefined ? await walkConversion(workspace) : 'none';
    return new SourceIndex(workspace, git, foldsNames(workspace), conversion);
  }

  /** How a cached path is compared with the workspace's files (see sourceExcluder). */
  private get rules(): ExcludeRules {
    return { path, folds: this.folds };
  }

  get format(): ObjectFormat {
    return this.git?.format ?? 'sha1';
  }

  /**
   * The files to hash: glob matches when `patterns` has any, else the tracked files (or every
   * file without git). Minus excludePaths, `.git` and `skip` (relative posix paths).
   */
  async list(
    patterns: readonly string[],
    excludePaths: readonly string[],
    skip: ReadonlySet<string> = new Set(),
  ): Promise<SourceList> {
    const keep = (rel: string) => !skip.has(rel);
    const wanted = patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#'));
    if (wanted.length > 0) {
      const excluded = makeExcluder(this.workspace, excludePaths, this.rules);
      const paths = await globSources(this.workspace, wanted, excluded);
      return { origin: 'glob', paths: paths.filter(keep) };
    }
    if (this.git !== undefined) {
      const excludedRel = sourceExcluder(this.workspace, excludePaths, this.rules);
      const paths = this.git.tracked.filter((rel) => keep(rel) && !excludedRel(rel));
      return { origin: 'git', paths: uniqueSorted(paths) };
    }
    // Hash while listing, unless an earlier walk's hashing is still running (then hash() does).
    const hasher =
      this.pending === undefined
        ? new BlobHasher(this.workspace, this.format, (rel, id) => this.cache.set(rel, id))
        : undefined;
    let paths: string[];
    try {
      paths = await walk(
        this.workspace,
        sourceExcluder(this.workspace, excludePaths, this.rules),
        (rel) => {
          if (!keep(rel)) return false;
          if (hasher !== undefined && !this.cache.has(rel)) hasher.add(rel, this.walkConversion);
          return true;
        },
      );
    } catch (err) {
      hasher?.abort(err as Error);
      throw err;
    }
    if (hasher !== undefined) this.pending = hasher.end();
    return { origin: 'walk', paths: uniqueSorted(paths) };
  }

  /**
   * Content ids of `paths` (relative posix). Listed files that are gone (a deleted tracked
   * file), directories (an uninitialised submodule) and special files are skipped.
   */
  async hash(paths: readonly string[]): Promise<SourceFile[]> {
    const pending = this.pending;
    this.pending = undefined;
    await pending;
    const todo: string[] = [];
    for (const rel of paths) {
      if (this.cache.has(rel)) continue;
      const known = this.git?.clean.get(rel);
      if (known !== undefined) this.cache.set(rel, known);
      else todo.push(rel);
    }
    const rels = uniqueSorted(todo);
    const conversions =
      this.git === undefined || rels.length === 0
        ? undefined
        : await gitConversions(this.workspace, rels, this.git);
    const ids = await hashPaths(
      this.workspace,
      rels,
      this.format,
      (rel) => conversions?.get(rel) ?? this.walkConversion,
    );
    for (const [rel, id] of ids) this.cache.set(rel, id);
    const out: SourceFile[] = [];
    for (const rel of paths) {
      const id = this.cache.get(rel);
      if (id !== undefined && id !== null) out.push({ path: rel, id });
    }
    return out;
  }
}

/** The sources component's hash: over `<relpath>\0<id>\n` lines in byte order of path. */
export function sourcesDigest(format: ObjectFormat, files: readonly SourceFile[]): string {
  const sorted = isSorted(files) ? files : [...files].sort((a, b) => compareBytes(a.path, b.path));
  const hash = createHash('sha256').update(`${format}\n`);
  // The same bytes as one update per line, in fewer calls.
  let lines = '';
  for (const f of sorted) {
    lines += `${f.path}\0${f.id}\n`;
    if (lines.length >= 1 << 16) {
      hash.update(lines);
      lines = '';
    }
  }
  return hash.update(lines).digest('hex');
}

function isSorted(files: readonly SourceFile[]): boolean {
  for (let i = 1; i < files.length; i++) {
    if (compareBytes((files[i - 1] as SourceFile).path, (files[i] as SourceFile).path) >= 0) {
      return false;
    }
  }
  return true;
}

// ---- listing ---------------------------------------------------------------------------------

type Excluder = (absPath: string) => boolean;

/** The path rules of the workspace's filesystem, as far as excluding cached paths goes. */
export interface ExcludeRules {
  readonly path: PathRules;
  /** Names are compared folded (`foldName`): `Out` and `out` are one directory. */
  readonly folds: boolean;
}

/**
 * Whether the filesystem of `dir` folds names: one of its entries whose name has case is looked
 * up with the case swapped, and the lookup finds the same file (device and inode). Nothing is
 * written. A directory with no such entry is taken to fold on Windows and macOS (NTFS and APFS
 * do by default) and not elsewhere.
 */
export function foldsNames(dir: string, platform: NodeJS.Platform = process.platform): boolean {
  const fallback = platform === 'win32' || platform === 'darwin';
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return fallback;
  }
  for (const name of names) {
    const swapped = swapCase(name);
    if (swapped === name) continue;
    const a = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false, bigint: true });
    if (a === undefined) continue; // gone since it was listed
    const b = fs.lstatSync(path.join(dir, swapped), { throwIfNoEntry: false, bigint: true });
    return b !== undefined && a.ino === b.ino && a.dev === b.dev;
  }
  return fallback;
}

function swapCase(name: string): string {
  let out = '';
  for (const ch of name) {
    const up = ch.toUpperCase();
    out += up === ch ? ch.toLowerCase() : up;
  }
  return out;
}

/** True for paths under a cached output or inside any `.git` directory (or a `.git` file). */
function makeExcluder(
  workspace: string,
  excludePaths: readonly string[],
  rules: ExcludeRules,
): Excluder {
  const isExcludedRel = sourceExcluder(workspace, excludePaths, rules);
  const fold = (p: string) => (rules.folds ? foldSegments(p) : p);
  const roots = excludedRoots(workspace, excludePaths, rules.path).map(fold);
  return (abs) => {
    const rel = relativeInside(workspace, abs, rules.path);
    if (rel === undefined) {
      return isExcludedRel('') || roots.some((r) => isInside(r, fold(abs), rules.path));
    }
    return isExcludedRel(toPosix(rel));
  };
}

function excludedRoots(
  workspace: string,
  excludePaths: readonly string[],
  rules: PathRules,
): string[] {
  return excludePaths
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => rules.resolve(workspace, p));
}

/** `foldName` of every segment, either separator. */
function foldSegments(p: string): string {
  return p.replace(/[^/\\]+/g, (seg) => foldName(seg));
}

/**
 * Whether a source (relative posix path under `workspace`) is excluded: under a cached path or
 * inside `.git`. Cached paths are compared as the workspace's filesystem compares names: where
 * it folds them (`rules.folds`: Windows, macOS, a casefold directory), `path: Out` excludes the
 * `out/` the build writes, since both are one directory there. String operations only: it runs
 * once per tracked file, and path.resolve/relative per file was a measurable part of the fast
 * path.
 */
export function sourceExcluder(
  workspace: string,
  excludePaths: readonly string[],
  rules: ExcludeRules,
): (rel: string) => boolean {
  const p = rules.path;
  const fold = (s: string) => (rules.folds ? foldSegments(s) : s);
  const roots = excludedRoots(workspace, excludePaths, p);
  const foldedWorkspace = fold(workspace);
  if (roots.some((root) => isInside(fold(root), foldedWorkspace, p))) return () => true;
  const prefixes = roots
    .filter((root) => isInside(foldedWorkspace, fold(root), p))
    .map((root) => `${fold(toPosix(p.relative(foldedWorkspace, fold(root))))}/`);
  return (rel) => {
    const r = fold(rel);
    if (r === '.git' || r.startsWith('.git/') || r.includes('/.git/') || r.endsWith('/.git')) {
      return true;
    }
    return prefixes.some((prefix) => r.startsWith(prefix) || `${r}/` === prefix);
  };
}

/** Unique, in byte order; git's listing already is, so check before sorting. */
function uniqueSorted(paths: Iterable<string>): string[] {
  const list = [...paths];
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) {
    sorted = compareBytes(list[i - 1] as string, list[i] as string) < 0;
  }
  return sorted ? list : [...new Set(list)].sort(compareBytes);
}

/**
 * Every file and symlink under `workspace` that `take` accepts, as relative posix paths in byte
 * order; `.git` and excluded directories are pruned, symlinks are never followed. Each directory
 * is read once (the entry types come with the names: no stat per file) and its entries sorted
 * with a directory as `name/`, so that depth-first order is the byte order of the whole paths.
 * `take` sees each path as it is found; the walk yields to the event loop now and then.
 */
async function walk(
  workspace: string,
  excluded: (rel: string) => boolean,
  take: (rel: string) => boolean,
): Promise<string[]> {
  const out: string[] = [];
  let sinceYield = 0;
  // Depth first, in order: a stack of directories, each with its sorted entries still to visit.
  const stack: { prefix: string; entries: string[]; next: number }[] = [];
  const enter = (prefix: string) => {
    const abs = prefix === '' ? workspace : path.join(workspace, prefix);
    const entries: string[] = [];
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const name = entry.name;
      if (name === '.git') continue;
      if (entry.isDirectory()) entries.push(`${name}/`);
      else if (entry.isFile() || entry.isSymbolicLink()) entries.push(name);
    }
    stack.push({ prefix, entries: entries.sort(compareBytes), next: 0 });
  };
  enter('');
  while (stack.length > 0) {
    const dir = stack[stack.length - 1] as (typeof stack)[number];
    if (dir.next === dir.entries.length) {
      stack.pop();
      continue;
    }
    const rel = dir.prefix + (dir.entries[dir.next++] as string);
    if (rel.endsWith('/')) {
      if (!excluded(rel.slice(0, -1))) enter(rel);
    } else if (!excluded(rel) && take(rel)) {
      out.push(rel);
      if (++sinceYield >= WALK_YIELD_FILES) {
        sinceYield = 0;
        await nextTurn();
      }
    }
  }
  return out;
}

/**
 * Tracked files under `workspace` with their index ids, and which of them git reports modified;
 * undefined when the workspace is not in a git work tree or git cannot be run.
 *
 * `git ls-files -s` gives every index entry (mode, id, stage, path relative to the workspace);
 * `git status --porcelain=v2 --untracked-files=no` refreshes the stat data in memory (no index
 * write: --no-optional-locks) and lists entries whose work-tree content differs from the index.
 * Those, unmerged paths, and every file of a submodule with changes are hashed by us.
 */
async function readGitState(workspace: string): Promise<GitState | undefined> {
  const git = (args: string[]) => runGit(workspace, args);
  let info: string[];
  try {
    info = (
      await git(['rev-parse', '--is-inside-work-tree', '--show-prefix', '--show-object-format'])
    )
      .split('\n')
      .map((l) => l.trim());
  } catch (err) {
    const message = errorMessage(err);
    if (fs.existsSync(path.join(workspace, '.git')) || isUnexpectedGitFailure(message)) {
      core.warning(
        `git could not list the tracked files, so every file under the workspace ` +
          `is a source (untracked build outputs included): ${message}`,
      );
    } else {
      core.debug(`Not a git work tree (${message}): hashing every file`);
    }
    return undefined;
  }
  if (info[0] !== 'true') return undefined;
  const prefix = info[1] ?? '';
  const format: ObjectFormat = info[2] === 'sha256' ? 'sha256' : 'sha1';
  const [staged, status, autocrlf] = await Promise.all([
    git(['ls-files', '-s', '-z', '--recurse-submodules']),
    git([
      'status',
      '--porcelain=v2',
      '-z',
      '--untracked-files=no',
      '--ignore-submodules=none',
      '--',
      '.',
    ]),
    // Unset is exit code 1 (false, git's default).
    git(['config', '--type=bool-or-str', '--get', 'core.autocrlf']).catch(() => 'false'),
  ]);

  const dirty = new Set<string>();
  const dirtyDirs: string[] = []; // submodules with changes: every file under them is hashed
  const records = status.split('\0');
  for (let i = 0; i < records.length; i++) {
    const rec = records[i] as string;
    const kind = rec[0];
    // `1 XY sub mH mI mW hH hI path`, `2 XY sub ... Xscore path` + NUL + origPath, `u XY ...`
    const fields = kind === '1' ? 8 : kind === '2' ? 9 : kind === 'u' ? 10 : -1;
    if (fields < 0) continue;
    const parts = rec.split(' ');
    const rootRel = parts.slice(fields).join(' ');
    if (kind === '2') i++; // the original path of a rename follows as its own record
    if (!rootRel.startsWith(prefix)) continue;
    const rel = rootRel.slice(prefix.length);
    const xy = parts[1] ?? '';
    const sub = parts[2] ?? 'N...';
    if (kind === 'u' || xy[1] !== '.') dirty.add(rel);
    if (sub.startsWith('S') && (sub[1] === 'C' || sub[2] === 'M')) dirtyDirs.push(`${rel}/`);
  }

  const tracked: string[] = [];
  const clean = new Map<string, string>();
  // `<mode> <id> <stage>\t<path>` records, parsed with indexOf (this loop runs per file). Git
  // writes '/' separators on every platform.
  let start = 0;
  while (start < staged.length) {
    let end = staged.indexOf('\0', start);
    if (end < 0) end = staged.length;
    const tab = staged.indexOf('\t', start);
    if (tab < 0 || tab > end) break;
    const mode = staged.slice(start, staged.indexOf(' ', start));
    const stage = staged.charCodeAt(tab - 1);
    const id = staged.slice(start + mode.length + 1, tab - 2);
    const rel = staged.slice(tab + 1, end);
    start = end + 1;
    if (mode === '160000') continue; // an uninitialised submodule: nothing on disk to hash
    tracked.push(rel);
    if (stage !== 0x30 /* '0' */) {
      dirty.add(rel); // unmerged: hash what is in the work tree
      continue;
    }
    if (dirty.size > 0 && dirty.has(rel)) continue;
    if (dirtyDirs.length > 0 && dirtyDirs.some((d) => rel.startsWith(d))) continue;
    clean.set(rel, mode === '120000' ? `link:${id}` : id);
  }
  for (const rel of dirty) clean.delete(rel);
  const crlf = autocrlf.trim();
  return {
    format,
    tracked,
    clean,
    autocrlf: crlf === 'true' ? 'true' : crlf === 'input' ? 'input' : 'false',
  };
}

/**
 * What the walk (no git listing) does to line endings: what `git add` would do to a file with
 * no attributes here, by core.autocrlf as git reads it in the workspace (the system and global
 * config outside a repository: Git for Windows sets it true, which is what makes a Windows
 * runner's checkout CRLF). True or input: a text file's CRLFs are hashed as LFs, as git stores
 * them, so a CRLF checkout walked without git gives the key git gives; false, unset or no git:
 * the bytes. `.gitattributes` and the safer-autocrlf rule need git's index and are not applied
 * here: a file committed with CRLFs, or with attributes that differ from core.autocrlf, can
 * hash differently in the walk than through git.
 */
async function walkConversion(workspace: string): Promise<EolConversion> {
  try {
    const value = await runGit(workspace, [
      'config',
      '--type=bool-or-str',
      '--get',
      'core.autocrlf',
    ]);
    return value.trim() === 'true' || value.trim() === 'input' ? 'auto' : 'none';
  } catch {
    return 'none'; // unset, or no git
  }
}

/** Paths per git command that names them (far below any command-line limit). */
const PATHS_PER_COMMAND = 500;

/**
 * The line-ending conversion `git add` would apply to each of `rels` (convert.c: the `text`,
 * `eol` and legacy `crlf` attributes, then core.autocrlf): so a modified or untracked file gets
 * the id git would give it, which in a CRLF checkout is the id of its LF content. Git's newer
 * "safer autocrlf" rule is kept too: a tracked file whose committed content has CRs is not
 * converted under `auto`. Filter drivers and `ident` are not applied (a filter runs commands).
 */
async function gitConversions(
  workspace: string,
  rels: readonly string[],
  state: GitState,
): Promise<Map<string, EolConversion>> {
  const attrs = new Map<string, Map<string, string>>();
  const out = await runGit(
    workspace,
    ['check-attr', '-z', '--stdin', 'text', 'eol', 'crlf'],
    rels.join('\0') + '\0',
  );
  const fields = out.split('\0');
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const rel = fields[i] as string;
    let m = attrs.get(rel);
    if (m === undefined) attrs.set(rel, (m = new Map()));
    m.set(fields[i + 1] as string, fields[i + 2] as string);
  }
  const conversions = new Map<string, EolConversion>();
  for (const rel of rels) {
    const a = attrs.get(rel);
    conversions.set(rel, conversionOf(a?.get('text'), a?.get('crlf'), a?.get('eol'), state));
  }
  // Safer autocrlf: tracked files under `auto` whose index content has a CR.
  let tracked: Set<string> | undefined;
  const autoTracked = rels.filter(
    (rel) => conversions.get(rel) === 'auto' && (tracked ??= new Set(state.tracked)).has(rel),
  );
  for (let i = 0; i < autoTracked.length; i += PATHS_PER_COMMAND) {
    const chunk = autoTracked.slice(i, i + PATHS_PER_COMMAND);
    const eol = await runGit(workspace, [
      '--literal-pathspecs',
      'ls-files',
      '--eol',
      '-z',
      '--',
      ...chunk,
    ]);
    for (const rec of eol.split('\0')) {
      const tab = rec.indexOf('\t');
      if (tab < 0) continue;
      const index = rec.slice(0, rec.indexOf(' '));
      if (index === 'i/crlf' || index === 'i/mixed') conversions.set(rec.slice(tab + 1), 'none');
    }
  }
  return conversions;
}

/** convert.c's convert_attrs, for the clean direction (values as `git check-attr` prints). */
function conversionOf(
  text: string | undefined,
  crlf: string | undefined,
  eol: string | undefined,
  state: GitState,
): EolConversion {
  const attr = text === undefined || text === 'unspecified' ? crlf : text;
  let action: EolConversion | undefined =
    attr === 'set' || attr === 'input'
      ? 'text'
      : attr === 'unset'
        ? 'none'
        : attr === 'auto'
          ? 'auto'
          : undefined;
  if (action === 'none') return 'none';
  if (action === undefined && (eol === 'lf' || eol === 'crlf')) action = 'text';
  if (action !== undefined) return action;
  return state.autocrlf === 'false' ? 'none' : 'auto';
}

/** git in `workspace`, configured so that a repository's own config runs nothing. */
function runGit(workspace: string, args: string[], input?: string): Promise<string> {
  return run(
    'git',
    [
      '--no-optional-locks',
      '-c',
      'core.fsmonitor=false',
      '-c',
      'core.untrackedCache=false',
      ...args,
    ],
    workspace,
    input,
  );
}

/** Failures other than "not a repository" or "git is not installed" (e.g. dubious ownership). */
function isUnexpectedGitFailure(message: string): boolean {
  return !message.includes('not a git repository') && !message.includes('ENOENT');
}

function run(file: string, args: string[], cwd: string, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      // (env spelled out: what the process's environment is now, also in a test's sandbox)
      { cwd, env: process.env, encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || err.message.trim();
          reject(new Error(`${file} ${args.join(' ')}: ${detail}`));
        } else {
          resolve(stdout);
        }
      },
    );
    child.stdin?.on('error', () => undefined); // an early exit is reported by the callback
    child.stdin?.end(input);
  });
}

// ---- globs -----------------------------------------------------------------------------------

/**
 * Files matched by the globs, relative to the workspace. Relative patterns are anchored at the
 * workspace (not process.cwd()); `!pattern` excludes as @actions/glob does (in order). Every
 * positive pattern must contribute at least one file, else InputError naming it.
 */
async function globSources(
  workspace: string,
  patterns: readonly string[],
  excluded: Excluder,
): Promise<string[]> {
  const anchored = patterns.map((p) => anchorPattern(workspace, p));
  if (anchored.every(isNegated)) {
    throw new InputError(
      'sources',
      `only exclusions (${patterns.join(', ')}): list at least one pattern to include`,
    );
  }
  const all = await runGlob(anchored, patterns, excluded, false);
  const rels: string[] = [];
  for (const abs of all) {
    if (!isInside(workspace, abs)) {
      throw new InputError(
        'sources',
        `'${abs}' is outside the workspace (${workspace}); sources must be inside it`,
      );
    }
    rels.push(toPosix(path.relative(workspace, abs)));
  }
  // Which positive pattern matched nothing? A file it matches survives only the negations that
  // come after it, so glob it with those alone and stop at the first surviving file. With one
  // positive pattern the combined result already tells.
  const single = anchored.filter((p) => !isNegated(p)).length === 1;
  for (let i = 0; i < anchored.length; i++) {
    const pattern = anchored[i] as string;
    if (isNegated(pattern)) continue;
    const group = [pattern, ...anchored.slice(i + 1).filter(isNegated)];
    const matched =
      rels.length > 0 && (single || (await runGlob(group, patterns, excluded, true)).length > 0);
    if (!matched) {
      throw new InputError(
        'sources',
        `the pattern '${patterns[i]}' matches no file under the workspace (${workspace})` +
          ` (cached outputs and .git are never sources)`,
      );
    }
  }
  return uniqueSorted(rels);
}

async function runGlob(
  anchored: readonly string[],
  original: readonly string[],
  excluded: Excluder,
  firstOnly: boolean,
): Promise<string[]> {
  let globber: glob.Globber;
  try {
    globber = await glob.create(anchored.join('\n'), {
      followSymbolicLinks: false,
      matchDirectories: false,
      implicitDescendants: true,
    });
  } catch (err) {
    throw new InputError(
      'sources',
      `invalid pattern in ${original.join(', ')}: ${errorMessage(err)}`,
    );
  }
  const out: string[] = [];
  for await (const abs of globber.globGenerator()) {
    if (excluded(abs)) continue;
    out.push(abs);
    if (firstOnly) break;
  }
  return out;
}

function isNegated(pattern: string): boolean {
  let negated = false;
  let p = pattern;
  while (p.startsWith('!')) {
    negated = !negated;
    p = p.slice(1).trim();
  }
  return negated;
}

/** Make a relative pattern absolute under `workspace`, keeping its leading `!`s. */
export function anchorPattern(workspace: string, pattern: string): string {
  let bangs = '';
  let p = pattern.trim();
  while (p.startsWith('!')) {
    bangs += '!';
    p = p.slice(1).trim();
  }
  if (p === '' || path.isAbsolute(p) || p === '~' || p.startsWith('~/') || p.startsWith('~\\')) {
    return bangs + p;
  }
  while (p.startsWith('./') || p.startsWith('.\\')) p = p.slice(2);
  const root = globEscape(workspace);
  if (p === '' || p === '.') return bangs + root;
  return bangs + root + (root.endsWith('/') || root.endsWith(path.sep) ? '' : path.sep) + p;
}

/** The escaping @actions/glob applies to literal paths (its own Pattern.globEscape). */
function globEscape(s: string): string {
  return (process.platform === 'win32' ? s : s.replace(/\\/g, '\\\\'))
    .replace(/(\[)(?=[^/]+\])/g, '[[]')
    .replace(/\?/g, '[?]')
    .replace(/\*/g, '[*]');
}
