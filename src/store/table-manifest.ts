/**
 * Tables and manifests, each into the other. `tableManifest` reads an untrusted table (an
 * artifact on disk, the table a pack carries) into the manifest it describes and hands that to
 * `parseManifest`, the one place that decides what restore accepts; `manifestTable` writes the
 * rows of a manifest (an imported pack's entry, a restore's stat cache).
 */
import { StoreError } from '../errors.js';
import { sha256 } from '../util/bytes.js';
import type { Location } from './blobs.js';
import { childPath } from './fold.js';
import {
  LINK_ANCHORS,
  parseManifest,
  type Manifest,
  type ManifestEntry,
  type ManifestRoot,
} from './manifest.js';
import {
  AT,
  decodeTable,
  DirRows,
  NUMS,
  ROW,
  digestAt,
  locationAt,
  type GroupList,
  type Table,
  type TableRoot,
} from './table.js';

/** How many tables `manifestOfTable` remembers. */
const RECENT_TABLES = 4;
const recent = new Map<string, { manifest: Manifest; locations: ReadonlyMap<string, Location> }>();

/**
 * `tableManifest` of the encoded table `body`, remembered by the bytes' digest for the last few
 * tables: a step reads one entry's table several times (scanned in its pack, then read back as
 * the basis of a save), and a large one takes a tenth of a second to check. Nobody changes a
 * manifest once made; each caller gets its own map of locations.
 */
export function manifestOfTable(body: Buffer): {
  manifest: Manifest;
  locations: Map<string, Location>;
} {
  const digest = sha256(body);
  let got = recent.get(digest);
  if (got === undefined) {
    got = tableManifest(decodeTable(body));
    if (recent.size >= RECENT_TABLES) recent.delete(recent.keys().next().value as string);
  } else {
    recent.delete(digest);
  }
  recent.set(digest, got);
  return { manifest: got.manifest, locations: new Map(got.locations) };
}

/**
 * The manifest an untrusted table describes, and where its grouped files live. Throws
 * UnsafeEntryError (from parseManifest) or StoreError on anything it will not restore: every
 * directory's rows must be reached from its root exactly once, names are single path segments,
 * and a grouped file must lie inside its group.
 */
export function tableManifest(t: Table): { manifest: Manifest; locations: Map<string, Location> } {
  const bad: (why: string) => never = (why) => {
    throw new StoreError(`malformed artifact: ${why}`);
  };
  const s = t.nums;
  const locations = new Map<string, Location>();
  const entryAt = (i: number, p: string): Record<string, unknown> => {
    const o = i * NUMS;
    const kind = s[o];
    const base = { path: p, mode: s[o + AT.mode], mtimeMs: s[o + AT.mtimeMs] };
    if (kind === ROW.dir) return { ...base, type: 'dir', size: 0 };
    if (kind === ROW.symlink) {
      const a = s[o + AT.size] as number;
      // (An unknown number stays in the entry for parseManifest to refuse.)
      const anchor = a === 0 ? undefined : (LINK_ANCHORS[a - 1] ?? a);
      return {
        ...base,
        type: 'symlink',
        size: 0,
        target: t.targets.get(i),
        ...(anchor !== undefined ? { anchor } : {}),
      };
    }
    const digest = digestAt(t, i);
    if ((s[o + AT.group] as number) >= 0) {
      const loc = locationAt(t, i);
      if (loc === undefined || !Number.isInteger(s[o + AT.group])) bad(`row ${i}: bad group`);
      if (!locations.has(digest)) locations.set(digest, loc);
    }
    return { ...base, type: 'file', size: s[o + AT.size], digest };
  };
  const roots = t.header.roots.map((r, ri) => {
    const dirs = t.dirs[ri] as Map<string, [number, number]>;
    if (r.kind === 'absent') {
      if (dirs.size > 0) bad(`absent root ${r.name} has rows`);
      return { name: r.name, kind: r.kind };
    }
    if (r.kind === 'file') {
      const only = dirs.get('');
      if (dirs.size !== 1 || only === undefined || only[1] !== 1) bad(`file root ${r.name}`);
      if (t.names[only[0]] !== '' || s[only[0] * NUMS] !== ROW.file) bad(`file root ${r.name}`);
      return { name: r.name, kind: r.kind, file: entryAt(only[0], '') };
    }
    // Parents before children: each directory's rows, a sub-directory's rows right after it.
    const entries: Record<string, unknown>[] = [];
    const used = new Set<string>();
    const stack: { rel: string; at: number; end: number }[] = [];
    const open = (rel: string): void => {
      const range = dirs.get(rel);
      if (range === undefined) return; // an empty directory
      if (used.has(rel)) bad(`directory ${JSON.stringify(rel)} listed twice`);
      used.add(rel);
      stack.push({ rel, at: range[0], end: range[0] + range[1] });
    };
    open('');
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { rel: string; at: number; end: number };
      if (top.at >= top.end) {
        stack.pop();
        continue;
      }
      const i = top.at++;
      const name = t.names[i] as string;
      if (name === '' || name.includes('/')) bad(`row ${i}: bad name ${JSON.stringify(name)}`);
      const p = childPath(top.rel, name);
      entries.push(entryAt(i, p));
      if (s[i * NUMS] === ROW.dir) open(p);
    }
    if (used.size !== dirs.size) bad(`root ${r.name}: rows of a directory it does not list`);
    return { name: r.name, kind: r.kind, mode: r.mode, mtimeMs: r.mtimeMs, entries };
  });
  return { manifest: parseManifest({ schema: 1, roots }), locations };
}

/**
 * The rows of manifest roots (files placed where `locate` says they live; `stat` gives a
 * file's inode and mtime where known), root by root, for encodeTable.
 */
export function manifestTable(
  roots: readonly ManifestRoot[],
  locate: (digest: string) => Location | undefined,
  groups: GroupList,
  abs?: (root: string) => string | undefined,
  stat?: (e: ManifestEntry) => readonly [ino: number, mtimeMs: number] | undefined,
): TableRoot[] {
  return roots.map((r) => {
    const dirs = new Map<string, DirRows>();
    const add = (rel: string, e: ManifestEntry): void => {
      const cut = rel.lastIndexOf('/');
      const dir = cut < 0 ? '' : rel.slice(0, cut);
      let d = dirs.get(dir);
      if (d === undefined) dirs.set(dir, (d = new DirRows()));
      const name = rel.slice(cut + 1);
      if (e.type === 'symlink') {
        d.addSymlink(name, e.mode, e.mtimeMs, e.target ?? '', e.anchor);
        return;
      }
      const st = stat?.(e);
      const kind = e.type === 'dir' ? ROW.dir : ROW.file;
      const j = d.add(kind, name, e.mode, e.size, st?.[1] ?? e.mtimeMs, st?.[0] ?? 0);
      if (e.digest === undefined) return;
      d.setDigest(j, e.digest);
      const loc = locate(e.digest);
      if (loc !== undefined) {
        d.set(j, AT.group, groups.add(loc.group, loc.groupSize));
        d.set(j, AT.offset, loc.offset);
      }
    };
    if (r.kind === 'file' && r.file) add('', r.file);
    else for (const e of r.entries) add(e.path, e);
    const a = abs?.(r.name);
    return {
      name: r.name,
      kind: r.kind,
      ...(r.kind === 'dir' ? { mode: r.mode, mtimeMs: r.mtimeMs } : {}),
      ...(a !== undefined ? { abs: a } : {}),
      dirs: [...dirs],
    };
  });
}
