/**
 * What a restore checks before it stages anything: room for the files the entry declares
 * (`checkRoom`), no root restored through a symlink below the workspace, nor over something of
 * another kind (`preflight`), and the entry's symlinks that leave their root: made only where
 * they lead inside the workspace, or the caller keeps outside links (`refuseLinksLeaving`), and
 * never with anything restored beneath them (`refuseRootsThroughLinks`).
 */
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { StoreError, UnsafeEntryError } from '../errors.js';
import { formatBytes } from '../util/bytes.js';
import { isInside, relativeInside } from '../util/fsx.js';
import { childPath, foldName, foldPath } from './fold.js';
import type { ManifestEntry, ManifestRoot } from './manifest.js';
import type { LinkOptions, OutputRoot } from './types.js';

export interface RootToRestore {
  readonly root: OutputRoot;
  readonly manifest: ManifestRoot;
}

export async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The nearest existing directory at or above `dir`. */
export async function existingAncestor(dir: string): Promise<string> {
  let cur = dir;
  for (;;) {
    try {
      if ((await fs.stat(cur)).isDirectory()) return cur;
    } catch {
      // keep climbing
    }
    const up = path.dirname(cur);
    if (up === cur) throw new StoreError(`no existing directory above ${dir}`);
    cur = up;
  }
}

/** The bytes of the files a root's manifest declares. */
export function declaredBytes(m: ManifestRoot): number {
  const list = m.kind === 'file' && m.file ? [m.file] : m.entries;
  let bytes = 0;
  for (const e of list) if (e.type === 'file') bytes += e.size;
  return bytes;
}

/**
 * Refuses an entry whose files (as its manifest declares them) cannot fit in the free space
 * where they are staged, before anything is written.
 */
export async function checkRoom(jobs: readonly RootToRestore[]): Promise<void> {
  const need = new Map<string, { bytes: number; free: number }>();
  for (const j of jobs) {
    const dir = await existingAncestor(path.dirname(j.root.absPath));
    const st = await fs.statfs(dir).catch(() => undefined);
    if (st === undefined) continue;
    // Keyed by filesystem (its size and type stand in for a device number statfs lacks).
    const fsKey = `${st.type}:${st.blocks}:${st.bsize}`;
    const n = need.get(fsKey) ?? { bytes: 0, free: st.bavail * st.bsize };
    n.bytes += declaredBytes(j.manifest);
    need.set(fsKey, n);
    if (n.bytes > n.free) {
      throw new StoreError(
        `the entry's files take ${formatBytes(n.bytes)}, more than the ${formatBytes(n.free)} free where ${j.root.absPath} is restored`,
      );
    }
  }
}

/**
 * The first symlink among the directories between `workspace` and `abs` (both excluded), as far
 * as they exist; undefined when there is none or `abs` is not inside the workspace (what lies
 * above a path outside it is the machine's, not the workspace's).
 */
async function linkedParent(
  abs: string,
  workspace: string | undefined,
): Promise<string | undefined> {
  const rel = workspace === undefined ? undefined : relativeInside(workspace, path.dirname(abs));
  if (workspace === undefined || rel === undefined || rel === '') return undefined;
  let cur = workspace;
  for (const seg of rel.split(path.sep)) {
    cur = path.join(cur, seg);
    const st = await lstatOrUndefined(cur);
    if (st === undefined) return undefined;
    if (st.isSymbolicLink()) return cur;
  }
  return undefined;
}

/** Refuses what cannot be restored before anything is staged (and again before moving). */
export async function preflight(job: RootToRestore, workspace: string | undefined): Promise<void> {
  const st = await lstatOrUndefined(job.root.absPath);
  if (st?.isSymbolicLink()) {
    throw new UnsafeEntryError(
      `output ${job.root.name} is a symlink in the workspace; not restoring through it`,
    );
  }
  const link = await linkedParent(job.root.absPath, workspace);
  if (link !== undefined) {
    throw new UnsafeEntryError(
      `output ${job.root.name} lies beneath ${link}, a symlink in the workspace; not restoring through it`,
    );
  }
  if (job.manifest.kind === 'file' && st?.isDirectory()) {
    throw new StoreError(
      `output ${job.root.name} is a directory in the workspace, the entry holds a file`,
    );
  }
}

/**
 * Where an anchored symlink (manifest.ts `LinkAnchor`) made at `linkAbs` leads: an absolute
 * path, from its text alone (which is in normal form: `parseManifest`); undefined for one
 * written from the workspace when there is none.
 */
export function leadsTo(
  e: ManifestEntry,
  linkAbs: string,
  workspace: string | undefined,
): string | undefined {
  const t = e.target ?? '';
  if (e.anchor === 'workspace') {
    return workspace === undefined ? undefined : path.join(workspace, ...t.slice(1).split('/'));
  }
  if (e.anchor === 'absolute') return t;
  return path.resolve(path.dirname(linkAbs), t);
}

/**
 * Refuses an entry with a symlink leaving its root that this restore may not make: one is made
 * when it leads inside `opts.workspace` (where it was saved does not matter: a link written
 * from the workspace is made for this one), or anywhere with `opts.keepOutsideLinks`. Entries
 * come from the remote tier: this is where their links are judged, before anything is staged.
 */
export function refuseLinksLeaving(jobs: readonly RootToRestore[], opts: LinkOptions): void {
  for (const j of jobs) {
    for (const e of j.manifest.entries) {
      if (e.type !== 'symlink' || e.anchor === undefined) continue;
      const to = leadsTo(e, path.join(j.root.absPath, ...e.path.split('/')), opts.workspace);
      const where = `output ${j.root.name}: symlink ${JSON.stringify(e.path)}`;
      if (to === undefined) {
        throw new UnsafeEntryError(`${where} leads into the workspace, and this restore has none`);
      }
      if (opts.workspace !== undefined && isInside(opts.workspace, to)) continue;
      if (opts.keepOutsideLinks === true) continue;
      throw new UnsafeEntryError(
        `${where} points outside the workspace (to ${to}); not restoring this entry without ` +
          'keep-outside-links: true',
      );
    }
  }
}

/**
 * Refuses a root that lies beneath a symlink of another root of the same restore: moved into
 * place after it, its content would go wherever that link leads.
 */
export function refuseRootsThroughLinks(jobs: readonly RootToRestore[]): void {
  for (const a of jobs) {
    const links = new Set<string>();
    for (const e of a.manifest.entries) if (e.type === 'symlink') links.add(foldPath(e.path));
    if (links.size === 0) continue;
    for (const b of jobs) {
      const rel = b === a ? undefined : relativeInside(a.root.absPath, b.root.absPath);
      if (rel === undefined || rel === '') continue;
      let p = '';
      for (const seg of rel.split(path.sep)) {
        p = childPath(p, foldName(seg));
        if (links.has(p)) {
          throw new UnsafeEntryError(
            `output ${b.root.name} lies beneath the symlink ${a.root.name}/${p} of the entry; ` +
              'not restoring through it',
          );
        }
      }
    }
  }
}
