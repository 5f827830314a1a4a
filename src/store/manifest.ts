/**
 * The artifact manifest of an entry and its validation. A manifest may be hostile (remote
 * entries are imported; a store on disk may be tampered with), so nothing in it is used before
 * `parseManifest` has proven that every path stays inside its root.
 */
import { UnsafeEntryError } from '../errors.js';

export type ManifestEntryType = 'file' | 'dir' | 'symlink';

export interface ManifestEntry {
  /** Posix, relative to the root, no '.' or '..' segments. */
  readonly path: string;
  readonly type: ManifestEntryType;
  /** Permission bits only (0..0o777). */
  readonly mode: number;
  /** Content bytes (files); 0 otherwise. */
  readonly size: number;
  readonly mtimeMs: number;
  /** sha256 of the content (files). */
  readonly digest?: string;
  /** The link text (symlinks): relative, resolving inside the root. */
  readonly target?: string;
}

/** `dir`: a directory and its entries. `file`: the root is one file (`file` holds it, path ''). */
export type RootKind = 'dir' | 'file' | 'absent';

export interface ManifestRoot {
  readonly name: string;
  readonly kind: RootKind;
  /** Mode and mtime of the root itself (dir and file roots). */
  readonly mode?: number;
  readonly mtimeMs?: number;
  /** Dir roots: the entries under it, parents before children. */
  readonly entries: readonly ManifestEntry[];
  /** File roots: the file (its path is ''). */
  readonly file?: ManifestEntry;
}

export interface Manifest {
  readonly schema: 1;
  readonly roots: readonly ManifestRoot[];
}

export const MAX_PATH_LENGTH = 4096;
export const MAX_SEGMENT_BYTES = 255;
export const MAX_ENTRIES = 500_000;
export const MAX_ROOTS = 256;
const MAX_SYMLINK_DEPTH = 40;
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

/** The manifest path of `name` in directory `parent` ('' for the root). */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
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
 * Resolves the symlink at `linkPath` lexically through the manifest's own symlinks. Returns the
 * resolved segments relative to the root, or undefined when it leaves the root (or loops).
 */
export function resolveLink(
  links: ReadonlyMap<string, string>,
  linkPath: string,
): string[] | undefined {
  const target = links.get(linkPath);
  if (target === undefined) return undefined;
  const parent = linkPath.split('/').slice(0, -1);
  return walkTarget(links, parent, target, 0);
}

function walkTarget(
  links: ReadonlyMap<string, string>,
  start: readonly string[],
  target: string,
  depth: number,
): string[] | undefined {
  if (depth > MAX_SYMLINK_DEPTH) return undefined;
  let parts = [...start];
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    const here = [...parts, seg].join('/');
    const next = links.get(here);
    if (next === undefined) {
      parts.push(seg);
      continue;
    }
    const resolved = walkTarget(links, parts, next, depth + 1);
    if (resolved === undefined) return undefined;
    parts = resolved;
  }
  return parts;
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
    const why = unsafeTargetReason(target);
    if (why !== undefined) refuse(`${where()}: ${why}`);
    return { path, type, mode, mtimeMs, size: 0, target: target as string };
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
    if (e.type === 'symlink' && e.target !== undefined) links.set(e.path, e.target);
  }
  for (const linkPath of links.keys()) {
    if (resolveLink(links, linkPath) === undefined) {
      refuse(`root ${name}: symlink ${JSON.stringify(linkPath)} points outside its root`);
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
