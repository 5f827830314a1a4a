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
 *
 * Hashing what git cannot vouch for: per-file overhead dominates (docs/performance-notes), so
 * each file is one open/fstat/read/close, no streams; many files go to two worker threads
 * pulling batches of the sorted list; a few are hashed on the main thread.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as core from '@actions/core';
import * as glob from '@actions/glob';
import { InputError, errorMessage } from '../errors.js';
import { compareBytes, toPosix } from '../util/bytes.js';
import { isInside } from '../util/fsx.js';

/** How the source list was obtained (for the log and the sources component's value). */
export type SourceOrigin = 'git' | 'walk' | 'glob';

/** Git's object format: which hash a blob id uses. */
export type ObjectFormat = 'sha1' | 'sha256';

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

/** Files at or above this size are hashed in chunks instead of being read whole. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;
/** Below this many files to hash, starting worker threads costs more than it saves. */
const WORKER_THRESHOLD = 512;
const BATCH_FILES = 256;
/** More than two threads was slower on the measured 2-core runners (performance notes). */
const MAX_WORKERS = 2;

/** What git says about the work tree: ids of tracked files whose content matches the index. */
interface GitState {
  readonly format: ObjectFormat;
  /** Every tracked file under the workspace (relative posix, submodules included). */
  readonly tracked: readonly string[];
  /** Tracked files git reports unmodified -> entry id (`link:` prefix for symlinks). */
  readonly clean: ReadonlyMap<string, string>;
}

/**
 * One listing of the workspace shared by every key computed from it (all packages of a
 * workspace file): git runs once, and each file is hashed at most once.
 */
export class SourceIndex {
  private readonly cache = new Map<string, string | null>();

  private constructor(
    readonly workspace: string,
    private readonly git: GitState | undefined,
  ) {}

  /** `useGit: false` ignores git entirely (every file is hashed; the benchmark's no-git path). */
  static async open(workspace: string, useGit = true): Promise<SourceIndex> {
    if (!fs.statSync(workspace, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`The workspace ${workspace} is not a directory`);
    }
    return new SourceIndex(workspace, useGit ? await readGitState(workspace) : undefined);
  }

  get format(): ObjectFormat {
    return this.git?.format ?? 'sha1';
  }

  /** True when ids come from git's index. */
  get usesGit(): boolean {
    return this.git !== undefined;
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
    const excluded = makeExcluder(this.workspace, excludePaths);
    const keep = (rel: string) => !skip.has(rel);
    const wanted = patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#'));
    if (wanted.length > 0) {
      const paths = await globSources(this.workspace, wanted, excluded);
      return { origin: 'glob', paths: paths.filter(keep) };
    }
    if (this.git !== undefined) {
      const excludedRel = makeRelExcluder(this.workspace, excludePaths);
      const paths = this.git.tracked.filter((rel) => keep(rel) && !excludedRel(rel));
      return { origin: 'git', paths: uniqueSorted(paths) };
    }
    return { origin: 'walk', paths: uniqueSorted(walk(this.workspace, excluded)).filter(keep) };
  }

  /**
   * Content ids of `paths` (relative posix). Listed files that are gone (a deleted tracked
   * file), directories (an uninitialised submodule) and special files are skipped.
   */
  async hash(paths: readonly string[]): Promise<SourceFile[]> {
    const todo: string[] = [];
    for (const rel of paths) {
      if (this.cache.has(rel)) continue;
      const known = this.git?.clean.get(rel);
      if (known !== undefined) this.cache.set(rel, known);
      else todo.push(rel);
    }
    const ids = await hashPaths(this.workspace, uniqueSorted(todo), this.format);
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
  for (const f of sorted) hash.update(`${f.path}\0${f.id}\n`);
  return hash.digest('hex');
}

function isSorted(files: readonly SourceFile[]): boolean {
  for (let i = 1; i < files.length; i++) {
    if (compareBytes((files[i - 1] as SourceFile).path, (files[i] as SourceFile).path) >= 0) {
      return false;
    }
  }
  return true;
}

/** Git's blob id of `data`: the hash of `blob <size>\0` followed by the bytes. */
export function blobId(data: string | Buffer, format: ObjectFormat = 'sha1'): string {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return createHash(format).update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

// ---- hashing ---------------------------------------------------------------------------------

type HashResult = { id: string | null } | { error: string };

/**
 * The id of one path, or null for something that is not a file or symlink (or is gone).
 * Self-contained (everything it uses is a parameter): its source is also the worker's code.
 * One open (no-follow, non-blocking so a FIFO cannot hang us), one fstat, reads, one close.
 */
function hashPath(
  fsm: typeof fs,
  makeHash: typeof createHash,
  abs: string,
  format: string,
  chunk: Buffer,
  largeBytes: number,
): HashResult {
  const blob = (bytes: Buffer): string =>
    makeHash(format).update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const gone = (err: unknown): boolean => {
    const code = (err as { code?: string } | undefined)?.code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  };
  try {
    const c = fsm.constants;
    const noFollow = c.O_NOFOLLOW;
    if (noFollow === undefined && fsm.lstatSync(abs).isSymbolicLink()) {
      return { id: 'link:' + blob(Buffer.from(fsm.readlinkSync(abs), 'utf8')) };
    }
    let fd: number;
    try {
      fd = fsm.openSync(abs, c.O_RDONLY | (noFollow ?? 0) | (c.O_NONBLOCK ?? 0));
    } catch (err) {
      if ((err as { code?: string }).code !== 'ELOOP') throw err;
      return { id: 'link:' + blob(Buffer.from(fsm.readlinkSync(abs), 'utf8')) };
    }
    try {
      const st = fsm.fstatSync(fd);
      if (!st.isFile()) return { id: null };
      if (st.size < largeBytes) {
        const data = Buffer.allocUnsafe(st.size);
        let n = 0;
        while (n < st.size) {
          const got = fsm.readSync(fd, data, n, st.size - n, null);
          if (got === 0) break;
          n += got;
        }
        if (n !== st.size || fsm.readSync(fd, chunk, 0, 1, null) !== 0) {
          return { error: `${abs} changed while it was being hashed` };
        }
        return { id: blob(data) };
      }
      const h = makeHash(format).update(`blob ${st.size}\0`);
      let total = 0;
      for (;;) {
        const got = fsm.readSync(fd, chunk, 0, chunk.length, null);
        if (got === 0) break;
        total += got;
        h.update(chunk.subarray(0, got));
      }
      if (total !== st.size) return { error: `${abs} changed while it was being hashed` };
      return { id: h.digest('hex') };
    } finally {
      fsm.closeSync(fd);
    }
  } catch (err) {
    if (gone(err)) return { id: null };
    return { error: `${abs}: ${String((err as Error).message ?? err)}` };
  }
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const path = require('node:path');
const hashPath = (${hashPath.toString()});
const chunk = Buffer.allocUnsafe(${CHUNK_BYTES});
parentPort.on('message', (batch) => {
  parentPort.postMessage(batch.map((rel) =>
    hashPath(fs, createHash, path.join(workerData.workspace, rel), workerData.format, chunk,
      ${LARGE_FILE_BYTES})));
});
`;

async function hashPaths(
  workspace: string,
  paths: readonly string[],
  format: ObjectFormat,
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const take = (rel: string, r: HashResult) => {
    if ('error' in r) throw new Error(`Could not hash a source file: ${r.error}`);
    out.set(rel, r.id);
  };
  const workers = Math.min(MAX_WORKERS, os.availableParallelism());
  if (paths.length < WORKER_THRESHOLD || workers < 2) {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    for (const rel of paths) {
      take(
        rel,
        hashPath(fs, createHash, path.join(workspace, rel), format, chunk, LARGE_FILE_BYTES),
      );
    }
    return out;
  }
  let next = 0;
  const runWorker = () =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { workspace, format } });
      let batch: string[] = [];
      const send = () => {
        batch = paths.slice(next, next + BATCH_FILES) as string[];
        next += batch.length;
        if (batch.length === 0) {
          void worker.terminate();
          resolve();
        } else {
          worker.postMessage(batch);
        }
      };
      worker.on('message', (results: HashResult[]) => {
        try {
          batch.forEach((rel, i) => take(rel, results[i] as HashResult));
        } catch (err) {
          void worker.terminate();
          reject(err as Error);
          return;
        }
        send();
      });
      worker.on('error', reject);
      send();
    });
  await Promise.all(Array.from({ length: workers }, runWorker));
  return out;
}

// ---- listing ---------------------------------------------------------------------------------

type Excluder = (absPath: string) => boolean;

/** True for paths under a cached output or inside any `.git` directory (or a `.git` file). */
function makeExcluder(workspace: string, excludePaths: readonly string[]): Excluder {
  const isExcludedRel = makeRelExcluder(workspace, excludePaths);
  return (abs) => {
    const rel = path.relative(workspace, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      return (
        isExcludedRel('') || excludedRoots(workspace, excludePaths).some((r) => isInside(r, abs))
      );
    }
    return isExcludedRel(toPosix(rel));
  };
}

function excludedRoots(workspace: string, excludePaths: readonly string[]): string[] {
  return excludePaths
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => path.resolve(workspace, p));
}

/**
 * The same test on a relative posix path, with string operations only: it runs once per tracked
 * file, and path.resolve/relative per file was a measurable part of the fast path.
 */
function makeRelExcluder(
  workspace: string,
  excludePaths: readonly string[],
): (rel: string) => boolean {
  const roots = excludedRoots(workspace, excludePaths);
  if (roots.some((root) => isInside(root, workspace))) return () => true;
  const prefixes = roots
    .filter((root) => isInside(workspace, root))
    .map((root) => `${toPosix(path.relative(workspace, root))}/`);
  return (rel) => {
    if (
      rel === '.git' ||
      rel.startsWith('.git/') ||
      rel.includes('/.git/') ||
      rel.endsWith('/.git')
    ) {
      return true;
    }
    return prefixes.some((prefix) => rel.startsWith(prefix) || `${rel}/` === prefix);
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

/** Every file and symlink under `workspace`, relative posix paths; excluded dirs are pruned. */
function walk(workspace: string, excluded: Excluder): string[] {
  const out: string[] = [];
  const stack: string[] = [workspace];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      if (entry.name === '.git' || excluded(abs)) continue;
      if (entry.isDirectory()) stack.push(abs);
      else if (entry.isFile() || entry.isSymbolicLink()) {
        out.push(toPosix(path.relative(workspace, abs)));
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
  // A repository's own config must not run anything while we only list files.
  const git = (args: string[]) =>
    run(
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
    );
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
  const [staged, status] = await Promise.all([
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
  return { format, tracked, clean };
}

/** Failures other than "not a repository" or "git is not installed" (e.g. dubious ownership). */
function isUnexpectedGitFailure(message: string): boolean {
  return !message.includes('not a git repository') && !message.includes('ENOENT');
}

function run(file: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || err.message.trim();
          reject(new Error(`${file} ${args.join(' ')}: ${detail}`));
        } else {
          resolve(stdout);
        }
      },
    );
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
