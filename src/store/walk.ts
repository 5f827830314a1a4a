/**
 * The save's walk: each output root listed with lstat (never following a symlink), its entries
 * as table rows (table.ts `DirRows`), every regular file handed to the planner (snapshot.ts) as
 * soon as its directory is listed. What restore would refuse (unsafe paths, special files,
 * symlinks that leave their root unless they stay inside the workspace or the caller keeps
 * outside links) is left out here with a warning, so the manifest of the rows passes
 * `parseManifest`.
 */
import * as core from '@actions/core';
import { lstatSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { relativeInside } from '../util/fsx.js';
import { childPath, foldName, foldPath, resolveLink } from './fold.js';
import {
  unsafeAnchoredReason,
  savedLinkText,
  unsafeChildReason,
  unsafeTargetReason,
  type LinkAnchor,
} from './manifest.js';
import type { DirCursor, StatLookup } from './statcache.js';
import { AT, DirRows, ROW } from './table.js';
import type { LinkOptions, OutputRoot } from './types.js';
import type { DirListing } from './worker-protocol.js';

/** Warnings kept for the job summary; the rest are in the log only. */
const KEPT_WARNINGS = 20;

/** A save's warnings: each a core.warning, and the first ones kept for the job summary. */
export class Warnings {
  readonly kept: string[] = [];
  private more = 0;

  add(message: string): void {
    core.warning(message);
    if (this.kept.length < KEPT_WARNINGS) this.kept.push(message);
    else this.more++;
  }

  list(): string[] {
    return this.more === 0
      ? this.kept
      : [...this.kept, `clyde-cache: ${this.more} more warnings of this save are in its log`];
  }
}

function perm(st: Stats): number {
  return st.mode & 0o777;
}

/** Directory listing in the workers (store-worker.ts `listDirs`). */
export type { DirListing };
export type ListDirs = (dirs: string[], budget: number) => Promise<DirListing[]>;
/** lstat kinds as the workers report them (0: gone). */
const KIND = { gone: 0, file: 1, dir: 2, symlink: 3, other: 4 } as const;
/** Entries per listing job: a worker lists its directories and goes on below them until this. */
const LIST_BUDGET = 1024;
/** Entries of the first listing jobs, which find the directories both workers then list. */
const FIRST_BUDGET = 64;
/** Directories per listing job, at most (fewer while few are known, so both workers list). */
const LIST_BATCH = 64;

interface DirNode {
  readonly abs: string;
  readonly rel: string;
  /** Its entries in byte order, once listed. */
  rows?: DirRows;
  /** The sub-directories among them, by name. */
  readonly subdirs: Map<string, DirNode>;
}

/** A symlink found by the walk (unsafe ones are dropped once the whole root is known). */
interface LinkRow {
  readonly rows: DirRows;
  readonly j: number;
  readonly path: string;
  readonly target: string;
}

/**
 * A regular file found by the walk: row j of `rows`, in directory `dirAbs` (a file root: its
 * path, name ''), and the row of the stat cache that vouches for it (-1: none).
 */
export type OnFile = (
  rows: DirRows,
  j: number,
  dirAbs: string,
  name: string,
  cached: number,
) => void;

/**
 * Lists a directory root: each directory's entries in byte order, as rows (table.ts). The
 * listing and the lstat of every entry (most of a walk's cost) run in the workers, directories
 * in batches, ahead of any compression job; each regular file goes to `onFile` as soon as its
 * directory's listing comes back, so compression starts while the rest of the tree is still
 * being listed. Returns the directories that have entries, parents before children.
 */
async function walkDir(
  rootAbs: string,
  rootName: string,
  onFile: OnFile,
  list: ListDirs,
  cachedDir: (rel: string) => DirCursor | undefined,
  links: LinkRow[],
  warnings: Warnings,
): Promise<[string, DirRows][]> {
  const root: DirNode = { abs: rootAbs, rel: '', subdirs: new Map() };
  const queue: DirNode[] = [root];
  /** Directories found and not listed yet, by absolute path. */
  const unlisted = new Map<string, DirNode>([[rootAbs, root]]);
  /** Every listing job; a job's end sends the directories it found, so the list grows. */
  const jobs: Promise<void>[] = [];
  let failure: unknown;

  /**
   * The sub-directories of a listing, queued for listing unless `listed` already has them.
   * Runs for every listing of a job before the files are looked at, so the workers get their
   * next directories without waiting for that.
   */
  const found = (node: DirNode, l: DirListing, listed: ReadonlySet<string>): void => {
    unlisted.delete(node.abs);
    if (l.missing === true) return; // gone since its parent was listed
    for (let k = 0; k < l.names.length; k++) {
      if (l.stats[k * 5] !== KIND.dir) continue;
      const name = l.names[k] as string;
      if (unsafeChildReason(node.rel, name) !== undefined) continue; // take() warns
      const abs = `${node.abs}${path.sep}${name}`;
      const child: DirNode = {
        abs,
        rel: childPath(node.rel, name),
        subdirs: new Map(),
      };
      node.subdirs.set(name, child);
      unlisted.set(abs, child);
      if (!listed.has(abs)) queue.push(child);
    }
  };

  /** The entries of a listing, in byte order, as rows; each regular file goes to `onFile`. */
  const take = (node: DirNode, l: DirListing): void => {
    const rows = new DirRows(l.names.length);
    node.rows = rows;
    if (l.missing === true) return;
    const cached = cachedDir(node.rel);
    const st = l.stats;
    for (let k = 0; k < l.names.length; k++) {
      const name = l.names[k] as string;
      const o = k * 5;
      const kind = st[o] as number;
      if (kind === KIND.gone) continue; // vanished meanwhile
      const mode = st[o + 1] as number;
      const mtimeMs = st[o + 3] as number;
      if (kind === KIND.dir && node.subdirs.has(name)) {
        rows.add(ROW.dir, name, mode, 0, mtimeMs, 0);
        continue;
      }
      const why = unsafeChildReason(node.rel, name);
      if (why !== undefined) {
        const p = childPath(node.rel, name);
        warnings.add(`clyde-cache: not caching ${rootName}/${p}: ${why}`);
        continue;
      }
      if (kind === KIND.file) {
        const size = st[o + 2] as number;
        const ino = st[o + 4] as number;
        const j = rows.add(ROW.file, name, mode, size, mtimeMs, ino);
        onFile(rows, j, node.abs, name, cached?.match(j, name, size, mtimeMs, ino) ?? -1);
      } else if (kind === KIND.symlink) {
        const read = l.targets[k];
        if (typeof read !== 'string') continue; // replaced meanwhile
        const target = savedLinkText(read, node.abs, rootAbs);
        const j = rows.addSymlink(name, mode, mtimeMs, target);
        const p = childPath(node.rel, name);
        links.push({ rows, j, path: p, target });
      } else {
        const p = childPath(node.rel, name);
        warnings.add(`clyde-cache: not caching ${rootName}/${p}: not a file, directory or symlink`);
      }
    }
  };

  // Sends what is queued in batches: half of it per job while little is known (both workers
  // list), at most LIST_BATCH directories per job.
  const pump = (): void => {
    while (queue.length > 0 && failure === undefined) {
      const n = Math.min(LIST_BATCH, Math.max(1, Math.ceil(queue.length / 2)));
      const batch = queue.splice(0, n);
      // (The first jobs come back quickly with directories to share out: the second worker
      // starts listing sooner.)
      const job = list(
        batch.map((d) => d.abs),
        jobs.length < 2 ? FIRST_BUDGET : LIST_BUDGET,
      ).then(
        (ls) => {
          // A listing follows its parent's: each directory is known by the time it comes.
          const listed = new Set(ls.map((l) => l.dir));
          const nodes = ls.map((l) => {
            const node = unlisted.get(l.dir);
            if (node === undefined) throw new StoreError(`unexpected listing of ${l.dir}`);
            found(node, l, listed);
            return node;
          });
          pump();
          ls.forEach((l, k) => take(nodes[k] as DirNode, l));
        },
        (err: unknown) => {
          failure ??= err;
        },
      );
      jobs.push(job.finally(pump));
    }
  };
  pump();
  // (A job pushes the jobs it starts before it settles, so this reaches every one.)
  for (let i = 0; i < jobs.length; i++) await jobs[i];
  if (failure !== undefined) throw failure;

  // Parents before children (the order a manifest is read back in).
  const out: [string, DirRows][] = [];
  const visit = (node: DirNode): void => {
    const rows = node.rows;
    if (rows === undefined) return;
    if (rows.count > 0) out.push([node.rel, rows]);
    for (let j = 0; j < rows.count; j++) {
      if (rows.get(j, AT.kind) !== ROW.dir) continue;
      const child = node.subdirs.get(rows.names[j] as string);
      if (child !== undefined) visit(child);
    }
  };
  visit(root);
  return out;
}

/** Links that leave the workspace named in one warning, at most. */
const NAMED_LINKS = 5;

/**
 * Sorts out the symlinks of a root. One that resolves inside its root is kept as it is (names
 * compared folded, as on a case-insensitive filesystem: `resolveLink`). One that leaves it is
 * kept, anchored (`anchorOf`), when it stays inside the workspace or `opts.keepOutsideLinks`;
 * else dropped, with one warning for the root naming them. Dropped with a warning each: targets
 * restore refuses on their face (empty, a backslash, a drive letter), and links sharing their
 * folded name with another entry (restore refuses such an entry everywhere: `parseManifest`).
 */
function sortLinks(
  root: OutputRoot,
  found: readonly LinkRow[],
  dirs: readonly [string, DirRows][],
  opts: LinkOptions,
  warnings: Warnings,
): void {
  const rootName = root.name;
  const links = new Map<string, string>();
  const live: LinkRow[] = [];
  for (const l of found) {
    // (An absolute target may still stay inside the workspace: anchorOf decides.)
    const why = unsafeTargetReason(l.target);
    if (why !== undefined && why !== 'absolute target') {
      warnings.add(`clyde-cache: not caching symlink ${rootName}/${l.path}: ${why}`);
      l.rows.drop(l.j);
    } else {
      live.push(l);
    }
  }
  if (live.length === 0) return;
  // Names by folded path in the directories that hold a symlink (rare: only those are folded).
  const linkDirs = new Set(live.map((l) => foldPath(l.path.slice(0, l.path.lastIndexOf('/') + 1))));
  const named = new Map<string, number>();
  for (const [rel, rows] of dirs) {
    const dir = foldPath(rel === '' ? '' : `${rel}/`);
    if (!linkDirs.has(dir)) continue;
    for (let j = 0; j < rows.count; j++) {
      if (rows.get(j, AT.kind) === ROW.gone) continue;
      const f = dir + foldName(rows.names[j] as string);
      named.set(f, (named.get(f) ?? 0) + 1);
    }
  }
  const fine: LinkRow[] = [];
  for (const l of live) {
    if ((named.get(foldPath(l.path)) ?? 0) > 1) {
      warnings.add(
        `clyde-cache: not caching symlink ${rootName}/${l.path}: another name in its directory ` +
          'differs from it only in case or Unicode form',
      );
      l.rows.drop(l.j);
    } else {
      fine.push(l);
      links.set(foldPath(l.path), l.target);
    }
  }
  // Decide on the full set first, then act: an anchored or dropped link only makes others
  // resolve as plain names, which restore validates again anyway.
  const leaving = fine.filter((l) => resolveLink(links, l.path) === undefined);
  const outside: string[] = [];
  for (const l of leaving) {
    const a = anchorOf(root.absPath, l, opts);
    if ('anchor' in a) {
      l.rows.anchorLink(l.j, a.target, a.anchor);
      continue;
    }
    l.rows.drop(l.j);
    if (a.to !== undefined) {
      outside.push(`${rootName}/${l.path} -> ${a.to}`);
    } else {
      warnings.add(
        `clyde-cache: not caching symlink ${rootName}/${l.path}: it points outside ${rootName} ` +
          `by a target restore cannot check without the filesystem: ${a.why}`,
      );
    }
  }
  if (outside.length > 0) {
    const more = outside.length - NAMED_LINKS;
    warnings.add(
      `clyde-cache: not caching ${outside.length === 1 ? 'a symlink' : `${outside.length} symlinks`} ` +
        `of ${rootName} pointing outside the workspace (${outside.slice(0, NAMED_LINKS).join(', ')}` +
        `${more > 0 ? `, and ${more} more` : ''}); set keep-outside-links: true to keep ` +
        `${outside.length === 1 ? 'it' : 'them'}`,
    );
  }
}

/**
 * How a symlink that leaves its root is kept: relative (`link`) or absolute into the workspace
 * (`workspace`, written from the workspace: the next workspace may be elsewhere) when it stays
 * inside `opts.workspace`; as it is (`link` or `absolute`) elsewhere when `opts.keepOutsideLinks`.
 * Otherwise `to`, where it leads; or `why` its target is not in normal form (resolved from the
 * text alone, a '..' after a name could lead anywhere: manifest.ts `unsafeAnchoredReason`).
 */
function anchorOf(
  rootAbs: string,
  l: LinkRow,
  opts: LinkOptions,
): { anchor: LinkAnchor; target: string } | { why: string; to?: string } {
  const absolute = l.target.startsWith('/');
  const why = unsafeAnchoredReason(absolute ? 'absolute' : 'link', l.target);
  if (why !== undefined) return { why };
  const to = absolute
    ? l.target
    : path.resolve(rootAbs, ...l.path.split('/').slice(0, -1), l.target);
  const inside = opts.workspace === undefined ? undefined : relativeInside(opts.workspace, to);
  if (inside !== undefined) {
    if (!absolute) return { anchor: 'link', target: l.target };
    return { anchor: 'workspace', target: `/${inside.split(path.sep).join('/')}` };
  }
  if (opts.keepOutsideLinks === true) {
    return { anchor: absolute ? 'absolute' : 'link', target: l.target };
  }
  return { why: 'outside the workspace', to };
}

/** One root as walked: its kind, and its directories' rows. */
export interface WalkedRoot {
  readonly root: OutputRoot;
  readonly kind: 'dir' | 'file' | 'absent';
  readonly mode?: number;
  readonly mtimeMs?: number;
  readonly dirs: [string, DirRows][];
}

export async function walkRoot(
  root: OutputRoot,
  onFile: OnFile,
  list: ListDirs,
  stat: StatLookup | undefined,
  opts: LinkOptions,
  warnings: Warnings,
): Promise<WalkedRoot> {
  let st: Stats;
  try {
    st = lstatSync(root.absPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { root, kind: 'absent', dirs: [] };
  }
  if (st.isFile()) {
    const rows = new DirRows(1);
    const j = rows.add(ROW.file, '', perm(st), st.size, st.mtimeMs, st.ino);
    const cached = stat?.dir(root, '')?.match(j, '', st.size, st.mtimeMs, st.ino) ?? -1;
    onFile(rows, j, root.absPath, '', cached);
    return { root, kind: 'file', mode: perm(st), mtimeMs: st.mtimeMs, dirs: [['', rows]] };
  }
  if (!st.isDirectory()) {
    warnings.add(
      `clyde-cache: not caching ${root.name}: it is a symlink or special file, not a directory or file`,
    );
    return { root, kind: 'absent', dirs: [] };
  }
  const cachedDir = (rel: string): DirCursor | undefined => stat?.dir(root, rel);
  const links: LinkRow[] = [];
  const dirs = await walkDir(root.absPath, root.name, onFile, list, cachedDir, links, warnings);
  sortLinks(root, links, dirs, opts, warnings);
  return { root, kind: 'dir', mode: perm(st), mtimeMs: st.mtimeMs, dirs };
}
