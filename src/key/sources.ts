/**
 * Which files are sources, and their content hashes.
 *
 * Listing: with no globs, the files git tracks under the workspace (`git ls-files`), or every
 * file under the workspace when it is not a git work tree; with globs, what @actions/glob
 * matches, relative to the workspace. Always minus the cached outputs (excludePaths) and `.git`.
 *
 * Hashing: sha256 of the bytes; a symlink hashes its target string with a prefix (never
 * followed). Per-file overhead dominates (docs/performance-notes), so small files are read with
 * one readFileSync each and large ones in chunks through one reused buffer: no streams.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import * as glob from '@actions/glob';
import { InputError, errorMessage } from '../errors.js';
import { compareBytes, sha256, toPosix } from '../util/bytes.js';
import { isInside } from '../util/fsx.js';

/** How the source list was obtained (for the log and the sources component's value). */
export type SourceOrigin = 'git' | 'walk' | 'glob';

export interface SourceList {
  readonly origin: SourceOrigin;
  /** Relative posix paths, byte-order sorted, unique. */
  readonly paths: readonly string[];
}

export interface SourceFile {
  readonly path: string;
  readonly sha256: string;
}

/** Files at or above this size are hashed in chunks instead of being read whole. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;
/** Prefix of what a symlink hashes, so a link and a file holding its target text differ. */
const SYMLINK_PREFIX = 'clyde-symlink\0';

export async function listSources(
  workspace: string,
  patterns: readonly string[],
  excludePaths: readonly string[],
): Promise<SourceList> {
  if (!fs.statSync(workspace, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`The workspace ${workspace} is not a directory`);
  }
  const excluded = makeExcluder(workspace, excludePaths);
  const wanted = patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#'));
  if (wanted.length > 0) {
    return { origin: 'glob', paths: await globSources(workspace, wanted, excluded) };
  }
  const tracked = await gitTrackedFiles(workspace);
  if (tracked !== undefined) {
    const paths = tracked.map(toPosix).filter((rel) => !excluded(path.resolve(workspace, rel)));
    return { origin: 'git', paths: uniqueSorted(paths) };
  }
  return { origin: 'walk', paths: uniqueSorted(walk(workspace, excluded)) };
}

/**
 * Hash each listed file. Files that are listed but gone (a deleted tracked file), directories
 * (an uninitialised submodule) and special files are skipped.
 */
export function hashSources(workspace: string, paths: readonly string[]): SourceFile[] {
  const out: SourceFile[] = [];
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  for (const rel of paths) {
    const abs = path.join(workspace, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if (isMissing(err)) continue;
      throw err;
    }
    let digest: string;
    if (st.isSymbolicLink()) {
      digest = sha256(SYMLINK_PREFIX + fs.readlinkSync(abs));
    } else if (st.isFile()) {
      try {
        digest =
          st.size >= LARGE_FILE_BYTES ? hashLargeFile(abs, chunk) : sha256(fs.readFileSync(abs));
      } catch (err) {
        if (isMissing(err)) continue;
        throw err;
      }
    } else {
      continue;
    }
    out.push({ path: rel, sha256: digest });
  }
  return out;
}

/** The sources component's hash: over `<relpath>\0<sha256>\n` lines in byte order of path. */
export function sourcesDigest(files: readonly SourceFile[]): string {
  const sorted = [...files].sort((a, b) => compareBytes(a.path, b.path));
  return sha256(sorted.map((f) => `${f.path}\0${f.sha256}\n`).join(''));
}

function hashLargeFile(abs: string, chunk: Buffer): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(abs, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

// ---- listing ---------------------------------------------------------------------------------

type Excluder = (absPath: string) => boolean;

/** True for paths under a cached output or inside any `.git` directory (or a `.git` file). */
function makeExcluder(workspace: string, excludePaths: readonly string[]): Excluder {
  const roots = excludePaths
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => path.resolve(workspace, p));
  return (abs) => {
    if (roots.some((root) => isInside(root, abs))) return true;
    const rel = path.relative(workspace, abs);
    return rel.split(path.sep).includes('.git');
  };
}

function uniqueSorted(paths: Iterable<string>): string[] {
  return [...new Set(paths)].sort(compareBytes);
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
 * Files git tracks under `workspace` (relative to it, submodules included), or undefined when
 * the workspace is not in a git work tree or git cannot be run.
 */
async function gitTrackedFiles(workspace: string): Promise<string[] | undefined> {
  // A repository's own config must not run anything while we only list files.
  const git = (args: string[]) => run('git', ['-c', 'core.fsmonitor=false', ...args], workspace);
  let inside: string;
  try {
    inside = (await git(['rev-parse', '--is-inside-work-tree'])).trim();
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
  if (inside !== 'true') return undefined;
  const out = await git(['ls-files', '-z', '--recurse-submodules']);
  return out.split('\0').filter((p) => p !== '');
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

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
