/**
 * The artifact manifest of an entry and its validation. A manifest may be hostile (remote
 * entries are imported; a store on disk may be tampered with), so nothing in it is used before
 * `parseManifest` has proven that every path stays inside its root.
 */
import * as nodePath from 'node:path';
import { UnsafeEntryError } from '../errors.js';
import { relativeInside, type PathRules } from '../util/fsx.js';
import { foldCollision, foldEntries, foldPath, resolveLink } from './fold.js';
import type { LinkAnchor, Manifest, ManifestEntry, ManifestRoot } from './types.js';

export type {
  LinkAnchor,
  Manifest,
  ManifestEntry,
  ManifestEntryType,
  ManifestRoot,
  RootKind,
} from './types.js';
export const LINK_ANCHORS: readonly LinkAnchor[] = ['link', 'workspace', 'absolute'];

export const MAX_PATH_LENGTH = 4096;
export const MAX_SEGMENT_BYTES = 255;
export const MAX_ENTRIES = 500_000;
export const MAX_ROOTS = 256;
const DIGEST = /^[0-9a-f]{64}$/;
const DRIVE = /^[A-Za-z]:/;

function refuse(message: string): never {
  throw new UnsafeEntryError(`unsafe entry: ${message}`);
}

/** Why `p` is not a safe relative manifest path, or undefined when it is. */
export function unsafePathReason(p: unknown): string | undefined {
  if (typeof p !== 'string') return 'path is not a string';
  if (p.length === 0) return 'empty path';
  if (p.length > MAX_PATH_LENGTH) return 'path too long';
  if (p.includes('\0')) return 'NUL in path';
  if (p.includes('\\')) return 'backslash in path';
  if (p.startsWith('/')) return 'absolute path';
  if (DRIVE.test(p)) return 'drive letter in path';
  // One pass over the segments (this runs for every entry of every manifest read).
  let start = 0;
  for (;;) {
    const end = p.indexOf('/', start);
    const why = unsafeSegmentReason(p.slice(start, end < 0 ? p.length : end));
    if (why !== undefined || end < 0) return why;
    start = end + 1;
  }
}

function unsafeSegmentReason(seg: string): string | undefined {
  if (seg === '' || seg === '.' || seg === '..') return `segment '${seg}' in path`;
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long segments need counting.
  if (seg.length * 3 > MAX_SEGMENT_BYTES && Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) {
    return 'path segment too long';
  }
  return undefined;
}

/**
 * `unsafePathReason` of `${parent}/${name}` (of `name` alone when `parent` is ''), for a
 * `parent` already found safe: only the name and the length are left to check.
 */
export function unsafeChildReason(parent: string, name: string): string | undefined {
  if (parent === '') return unsafePathReason(name);
  if (parent.length + 1 + name.length > MAX_PATH_LENGTH) return 'path too long';
  if (name.includes('/') || name.includes('\0') || name.includes('\\')) {
    return unsafePathReason(`${parent}/${name}`);
  }
  return unsafeSegmentReason(name);
}

/** Why a symlink target is refused on its face (before resolution), or undefined. */
export function unsafeTargetReason(t: unknown): string | undefined {
  if (typeof t !== 'string') return 'target is not a string';
  if (t.length === 0) return 'empty target';
  if (t.length > MAX_PATH_LENGTH) return 'target too long';
  if (t.includes('\0')) return 'NUL in target';
  if (t.includes('\\')) return 'backslash in target';
  if (t.startsWith('/')) return 'absolute target';
  if (DRIVE.test(t)) return 'drive letter in target';
  return undefined;
}

/**
 * Why the target of a symlink that leaves its root (`anchor`) is refused on its face, or
 * undefined. Such a target is resolved by its text alone, so it must be in normal form: no '.'
 * or empty segment, and no '..' after a name (which the filesystem would take from wherever
 * the name's own link leads).
 */
export function unsafeAnchoredReason(anchor: LinkAnchor, t: unknown): string | undefined {
  if (typeof t !== 'string') return 'target is not a string';
  if (t.length === 0) return 'empty target';
  if (t.length > MAX_PATH_LENGTH) return 'target too long';
  if (t.includes('\0')) return 'NUL in target';
  if (t.includes('\\')) return 'backslash in target';
  if (DRIVE.test(t)) return 'drive letter in target';
  if ((anchor === 'link') === t.startsWith('/')) {
    return anchor === 'link' ? 'absolute target' : 'relative target';
  }
  if (t === '/') return undefined; // the workspace itself, or the filesystem's root
  let climbing = anchor === 'link';
  for (const seg of (anchor === 'link' ? t : t.slice(1)).split('/')) {
    if (seg === '..' && climbing) continue;
    climbing = false;
    const why = unsafeSegmentReason(seg);
    if (why !== undefined) return `${why} of target (not in normal form)`;
  }
  return undefined;
}

/** What `savedLinkText` needs of the machine a save runs on; tests inject Windows. */
export interface LinkHost {
  readonly platform: NodeJS.Platform;
  readonly path: PathRules;
}

/**
 * A symlink's target (what readlink gave) as a manifest records it: posix, like every path in
 * a manifest. Only Windows needs this: Node writes `\` into the targets of the links it makes
 * there, and a junction's target (or a link made with an absolute one) is an absolute path,
 * possibly `\\?\`-prefixed. Separators become `/`, and an absolute target inside the cached
 * root (`rootAbs`) becomes the path from the link's directory (`linkDirAbs`), so pnpm-style
 * `node_modules` links survive; the containment rules then judge it like any relative link. An
 * absolute target outside the root stays absolute, and is refused as before. Elsewhere a
 * backslash is a character of the name and the target is kept as it is.
 */
export function savedLinkText(
  target: string,
  linkDirAbs: string,
  rootAbs: string,
  host: LinkHost = { platform: process.platform, path: nodePath },
): string {
  if (host.platform !== 'win32') return target;
  const p = host.path;
  const t = target.startsWith('\\\\?\\') ? target.slice(4) : target;
  if (p.isAbsolute(t) && relativeInside(rootAbs, t, p) !== undefined) {
    return p.relative(linkDirAbs, t).replace(/\\/g, '/') || '.';
  }
  return t.replace(/\\/g, '/');
}

/**
 * Refuses a root where a symlink and another entry have names that fold equal in directories
 * that fold equal: on a case-insensitive filesystem they are one name, and a path meant to go
 * under a directory could go through the symlink. Only directories holding a symlink are
 * looked at; other entries may collide (restore refuses those where the destination folds
 * names, and only there: restore.ts).
 */
function refuseLinkCollisions(rootName: string, entries: readonly ManifestEntry[]): void {
  const linkDirs = new Set<string>();
  foldEntries(
    entries,
    (folded) => linkDirs.add(folded.slice(0, Math.max(0, folded.lastIndexOf('/')))),
    (_, e) => e.type === 'symlink',
  );
  const hit = foldCollision(
    entries,
    (a, b) => a.type === 'symlink' || b.type === 'symlink',
    linkDirs,
  );
  if (hit !== undefined) {
    refuse(
      `root ${rootName}: ${JSON.stringify(hit[0].path)} and ${JSON.stringify(hit[1].path)} are ` +
        'one name on a case-insensitive filesystem, and one of them is a symlink',
    );
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkMode(v: unknown, where: () => string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o777) {
    refuse(`${where()}: mode must be permission bits`);
  }
  return v;
}

function checkMtime(v: unknown, where: () => string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) refuse(`${where()}: bad mtime`);
  return v;
}

function parseEntry(raw: unknown, allowEmptyPath: boolean): ManifestEntry {
  if (!isPlainObject(raw)) refuse('manifest entry is not an object');
  const p = raw['path'];
  if (!(allowEmptyPath && p === '')) {
    const why = unsafePathReason(p);
    if (why !== undefined) refuse(`${why}: ${JSON.stringify(p)?.slice(0, 200)}`);
  }
  // (Named only when refusing: this runs for every entry of every manifest read.)
  const where = (): string => JSON.stringify(p);
  const type = raw['type'];
  if (type !== 'file' && type !== 'dir' && type !== 'symlink') {
    refuse(`${where()}: type ${JSON.stringify(type)} is not file, dir or symlink`);
  }
  const mode = checkMode(raw['mode'], where);
  const mtimeMs = checkMtime(raw['mtimeMs'], where);
  const size = raw['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    refuse(`${where()}: bad size`);
  }
  const path = p as string;
  if (type === 'file') {
    const digest = raw['digest'];
    if (typeof digest !== 'string' || !DIGEST.test(digest)) refuse(`${where()}: bad digest`);
    return { path, type, mode, mtimeMs, size, digest };
  }
  if (type === 'symlink') {
    const target = raw['target'];
    const anchor = raw['anchor'];
    if (anchor === undefined) {
      const why = unsafeTargetReason(target);
      if (why !== undefined) refuse(`${where()}: ${why}`);
      return { path, type, mode, mtimeMs, size: 0, target: target as string };
    }
    if (!LINK_ANCHORS.includes(anchor as LinkAnchor)) {
      refuse(`${where()}: anchor ${JSON.stringify(anchor)} is not link, workspace or absolute`);
    }
    const why = unsafeAnchoredReason(anchor as LinkAnchor, target);
    if (why !== undefined) refuse(`${where()}: ${why}`);
    return {
      path,
      type,
      mode,
      mtimeMs,
      size: 0,
      target: target as string,
      anchor: anchor as LinkAnchor,
    };
  }
  return { path, type, mode, mtimeMs, size: 0 };
}

function parseRoot(raw: unknown): ManifestRoot {
  if (!isPlainObject(raw)) refuse('manifest root is not an object');
  const name = raw['name'];
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_PATH_LENGTH) {
    refuse('bad root name');
  }
  const kind = raw['kind'];
  if (kind === 'absent') return { name, kind, entries: [] };
  if (kind === 'file') {
    const file = parseEntry(raw['file'], true);
    if (file.path !== '' || file.type !== 'file') refuse(`root ${name}: bad file root`);
    return { name, kind, mode: file.mode, mtimeMs: file.mtimeMs, entries: [], file };
  }
  if (kind !== 'dir') refuse(`root ${name}: unknown kind ${JSON.stringify(kind)}`);
  const mode = checkMode(raw['mode'], () => `root ${name}`);
  const mtimeMs = checkMtime(raw['mtimeMs'], () => `root ${name}`);
  const rawEntries = raw['entries'];
  if (!Array.isArray(rawEntries)) refuse(`root ${name}: entries is not a list`);
  if (rawEntries.length > MAX_ENTRIES) refuse(`root ${name}: too many entries`);
  const entries = rawEntries.map((e) => parseEntry(e, false));

  const byPath = new Map<string, ManifestEntry>();
  const links = new Map<string, string>();
  for (const e of entries) {
    if (byPath.has(e.path)) refuse(`root ${name}: duplicate path ${JSON.stringify(e.path)}`);
    // Every parent must be a directory listed earlier: so no path passes through a symlink
    // (or a file) of this manifest, and staging never needs to invent a directory. The nearest
    // parent is enough: it passed this same check when it was listed, and so on upwards.
    const cut = e.path.lastIndexOf('/');
    if (cut >= 0 && byPath.get(e.path.slice(0, cut))?.type !== 'dir') {
      refuse(`root ${name}: ${JSON.stringify(e.path)} does not sit under a listed directory`);
    }
    byPath.set(e.path, e);
    if (e.type === 'symlink' && e.target !== undefined) links.set(foldPath(e.path), e.target);
  }
  if (links.size > 0) refuseLinkCollisions(name, entries);
  // A link that leaves its root says so (`anchor`): restore decides whether the workspace it
  // is restored in takes it (restore.ts). Any other must resolve inside, and a path through an
  // anchored link counts as leaving (nothing is ever written beneath a link: see above).
  for (const e of entries) {
    if (
      e.type === 'symlink' &&
      e.anchor === undefined &&
      resolveLink(links, e.path) === undefined
    ) {
      refuse(`root ${name}: symlink ${JSON.stringify(e.path)} points outside its root`);
    }
  }
  return { name, kind, mode, mtimeMs, entries };
}

/** Validates an untrusted manifest; throws UnsafeEntryError on anything it will not restore. */
export function parseManifest(raw: unknown): Manifest {
  if (!isPlainObject(raw)) refuse('manifest is not an object');
  if (raw['schema'] !== 1) refuse(`unknown manifest schema ${JSON.stringify(raw['schema'])}`);
  const rawRoots = raw['roots'];
  if (!Array.isArray(rawRoots) || rawRoots.length > MAX_ROOTS) refuse('bad roots list');
  const roots = rawRoots.map(parseRoot);
  const names = new Set<string>();
  let total = 0;
  for (const r of roots) {
    if (names.has(r.name)) refuse(`duplicate root ${r.name}`);
    names.add(r.name);
    total += r.entries.length;
  }
  if (total > MAX_ENTRIES) refuse('too many entries');
  const sizes = new Map<string, number>();
  for (const r of roots) {
    for (const f of r.kind === 'file' && r.file ? [r.file] : r.entries) {
      if (f.digest === undefined) continue;
      const seen = sizes.get(f.digest);
      if (seen !== undefined && seen !== f.size) refuse(`digest ${f.digest} with two sizes`);
      sizes.set(f.digest, f.size);
    }
  }
  return { schema: 1, roots };
}

/** A file entry of a manifest, with its digest. */
export type ManifestFile = ManifestEntry & { readonly digest: string };

/**
 * Every file of the manifest (file roots included), in manifest order. Manifests are never
 * changed once built, so the list is worked out once per manifest object.
 */
export function manifestFiles(m: Manifest): readonly ManifestFile[] {
  let files = filesOf.get(m);
  if (files === undefined) {
    files = [];
    for (const r of m.roots) {
      const entries = r.kind === 'file' && r.file ? [r.file] : r.entries;
      for (const e of entries) {
        if (e.type === 'file' && e.digest !== undefined) files.push(e as ManifestFile);
      }
    }
    filesOf.set(m, files);
  }
  return files;
}

const filesOf = new WeakMap<Manifest, ManifestFile[]>();

/** digest -> uncompressed size, for every blob the manifest needs. */
export function blobSizes(m: Manifest): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of manifestFiles(m)) out.set(f.digest, f.size);
  return out;
}
