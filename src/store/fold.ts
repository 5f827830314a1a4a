/**
 * How names compare, and where symlinks lead, as the most lenient filesystem we may restore
 * onto sees them: `foldName` (case, Unicode form, HFS+ ignorables, Win32 trailing dots), folded
 * paths, and lexical resolution of an entry's symlinks through its own links. The judges of an
 * entry (manifest.ts `parseManifest`, restore.ts) and the save's walk (walk.ts) use these.
 */
import type { ManifestEntry, ManifestRoot } from './types.js';

const MAX_SYMLINK_DEPTH = 40;

/** The manifest path of `name` in directory `parent` ('' for the root). */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** Default-ignorable code points: HFS+ leaves some of them out when it compares names. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const NON_ASCII = /[\u0080-\uffff]/;
/** Win32 drops a name's trailing dots and spaces. */
const TRAILING_DOTS = /[. ]+$/;

/**
 * One name as the most lenient filesystem we may restore onto would compare it: Unicode
 * normalisation ignored (APFS, HFS+), default-ignorable code points left out (HFS+), case
 * folded fully (a round through upper and lower case: 'ß' and 'SS' and 'ss' meet; APFS, NTFS,
 * ext4 casefold) and trailing dots and spaces dropped (Win32). Two names that any of them may
 * take for one fold equal; folding more than a given filesystem does only makes us stricter.
 */
export function foldName(name: string): string {
  const s = !NON_ASCII.test(name)
    ? name.toLowerCase()
    : name.normalize('NFC').replace(IGNORABLE, '').toUpperCase().toLowerCase().normalize('NFC');
  const t = s.replace(TRAILING_DOTS, '');
  return t === '' ? s : t;
}

/** `foldName` of each segment of a manifest path. */
export function foldPath(p: string): string {
  return p.split('/').map(foldName).join('/');
}

/** A root's symlinks by folded path (`foldPath`), to their link text. */
export type LinkMap = ReadonlyMap<string, string>;

/**
 * Resolves the symlink at `linkPath` lexically through the manifest's own symlinks, matching
 * names folded (`foldName`): a name that reaches a symlink on some filesystem is followed. The
 * caller has made sure no other entry folds to a symlink's name, so where a filesystem does
 * not fold that name, it names nothing and the real lookup fails instead of going anywhere.
 * Returns the resolved folded segments relative to the root, or undefined when it leaves the
 * root (or loops).
 */
export function resolveLink(links: LinkMap, linkPath: string): string[] | undefined {
  const here = foldPath(linkPath);
  const target = links.get(here);
  if (target === undefined) return undefined;
  return walkTarget(links, here.split('/').slice(0, -1), target, 0);
}

function walkTarget(
  links: LinkMap,
  start: readonly string[],
  target: string,
  depth: number,
): string[] | undefined {
  if (depth > MAX_SYMLINK_DEPTH) return undefined;
  // (An anchored target written from '/' leaves the root whatever it names.)
  if (target.startsWith('/')) return undefined;
  let parts = [...start];
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    const name = foldName(seg);
    const next = links.get([...parts, name].join('/'));
    if (next === undefined) {
      parts.push(name);
      continue;
    }
    const resolved = walkTarget(links, parts, next, depth + 1);
    if (resolved === undefined) return undefined;
    parts = resolved;
  }
  return parts;
}

/**
 * Folds the entries of a directory root one by one: `visit(folded, e)` gets each entry's path
 * folded (`foldPath`), in manifest order, where `want(foldedParent, e)` (every entry without it).
 * Parents are listed before their entries (parseRoot checks), so each directory's name is
 * folded once and its entries reuse it.
 */
export function foldEntries(
  entries: readonly ManifestEntry[],
  visit: (folded: string, e: ManifestEntry) => void,
  want: (foldedParent: string, e: ManifestEntry) => boolean = () => true,
): void {
  const dirs = new Map<string, string>([['', '']]);
  for (const e of entries) {
    const cut = e.path.lastIndexOf('/');
    const exact = cut < 0 ? '' : e.path.slice(0, cut);
    const parent = dirs.get(exact) ?? foldPath(exact);
    const wanted = want(parent, e);
    if (e.type !== 'dir' && !wanted) continue;
    const folded = childPath(parent, foldName(e.path.slice(cut + 1)));
    if (e.type === 'dir') dirs.set(e.path, folded);
    if (wanted) visit(folded, e);
  }
}

/**
 * The first two entries of a directory root whose paths fold equal (`foldName`), where
 * `pair(a, b)` says they matter, looking only in directories that fold to one of `parents`
 * (every directory without it); undefined when there are none. Such names are one name on a
 * case-insensitive (or normalisation-insensitive) filesystem.
 */
export function foldCollision(
  entries: readonly ManifestEntry[],
  pair: (a: ManifestEntry, b: ManifestEntry) => boolean = () => true,
  parents?: ReadonlySet<string>,
): [ManifestEntry, ManifestEntry] | undefined {
  const seen = new Map<string, ManifestEntry>();
  let found: [ManifestEntry, ManifestEntry] | undefined;
  foldEntries(
    entries,
    (folded, e) => {
      const other = seen.get(folded);
      if (other === undefined) seen.set(folded, e);
      else if (found === undefined && pair(other, e)) found = [other, e];
    },
    parents && ((p) => parents.has(p)),
  );
  return found;
}

/**
 * How each symlink of a directory root should be made where the kind matters (Windows): 'dir'
 * when it resolves to a directory of the entry (or the root itself), else 'file'.
 */
export function symlinkKinds(root: ManifestRoot): Map<ManifestEntry, 'dir' | 'file'> {
  const out = new Map<ManifestEntry, 'dir' | 'file'>();
  const links = new Map<string, string>();
  const dirs = new Set<string>(['']);
  for (const e of root.entries) {
    if (e.type === 'symlink' && e.target !== undefined) links.set(foldPath(e.path), e.target);
    else if (e.type === 'dir') dirs.add(foldPath(e.path));
  }
  if (links.size === 0) return out;
  for (const e of root.entries) {
    if (e.type !== 'symlink') continue;
    const to = resolveLink(links, e.path);
    out.set(e, to !== undefined && dirs.has(to.join('/')) ? 'dir' : 'file');
  }
  return out;
}
