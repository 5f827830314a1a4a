/**
 * Hostile entries, shared by the tests that refuse them: as manifests (hostile.test.ts writes
 * them as tables, restored from the store and imported from packs, on an ordinary and on a
 * case-folding filesystem) and as hand-made tables (table.test.ts, and hostile.test.ts).
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { DirRows, encodeTable, ROW, type TableRoot } from '../../src/store/table.js';
import { dirEntry, fileEntry, linkEntry, type Sandbox } from './helpers.js';

export const PAYLOAD = 'payload';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * The symlink chain of issue 12 row 1: `B` stays inside, and `e` resolves inside only where
 * names are compared as spelled; where `b` is `B` (APFS, NTFS), `e` is three levels above `out`.
 */
export const CASE_CHAIN: readonly Record<string, unknown>[] = [
  dirEntry('d1'),
  dirEntry('d1/d2'),
  linkEntry('d1/d2/B', '../..'),
  linkEntry('d1/d2/e', 'b/../../..'),
];

/** name -> manifest entries of the root 'out' (whose absPath is <ws>/out). */
export function hostileManifests(sb: Sandbox): Record<string, Record<string, unknown>[]> {
  return {
    'absolute path': [fileEntry(path.join(sb.outside, 'pwned'), PAYLOAD)],
    'dot-dot path': [fileEntry('../../outside/pwned', PAYLOAD)],
    'dot-dot in the middle': [dirEntry('a'), fileEntry('a/../../../outside/pwned', PAYLOAD)],
    'backslash path': [fileEntry('..\\..\\outside\\pwned', PAYLOAD)],
    'drive letter': [fileEntry('C:/pwned', PAYLOAD)],
    'drive-relative': [fileEntry('C:pwned', PAYLOAD)],
    'NUL in path': [fileEntry('a\0b', PAYLOAD)],
    'empty segment': [dirEntry('a'), fileEntry('a//b', PAYLOAD)],
    'dot segment': [fileEntry('./pwned', PAYLOAD)],
    'symlink pointing out': [linkEntry('escape', '../../outside')],
    'absolute symlink': [linkEntry('escape', sb.outside)],
    'symlink then a file through it': [
      dirEntry('sub'),
      linkEntry('l', 'sub'),
      fileEntry('l/x', PAYLOAD),
    ],
    'dot-dot symlink then a file through it': [
      linkEntry('a', '..'),
      fileEntry('a/outside/pwned', PAYLOAD),
    ],
    'symlink escaping through another symlink': [
      dirEntry('d'),
      linkEntry('d/l', '..'),
      linkEntry('m', 'd/l/..'),
    ],
    'symlink loop': [linkEntry('a', 'b'), linkEntry('b', 'a')],
    // Links that say they leave their root (anchored) but are not written as such links must
    // be (links.test.ts has the well-formed ones, which the restoring workspace judges).
    'anchored symlink with .. after a name': [
      { ...linkEntry('escape', '../a/../../../outside'), anchor: 'link' },
    ],
    'workspace-anchored symlink climbing out': [
      { ...linkEntry('escape', '/../outside'), anchor: 'workspace' },
    ],
    'anchored symlink then a file through it': [
      { ...linkEntry('l', '../../outside'), anchor: 'link' },
      fileEntry('l/pwned', PAYLOAD),
    ],
    'symlink escaping through a symlink spelled in another case': [...CASE_CHAIN],
    'symlink escaping through a symlink spelled in another Unicode form': [
      dirEntry('d'),
      linkEntry('d/\u00e9', '..'),
      linkEntry('d/x', 'e\u0301/..'),
    ],
    'symlink escaping through a symlink named with an ignorable code point': [
      dirEntry('d'),
      linkEntry('d/B', '..'),
      linkEntry('d/x', 'b\u200c/..'),
    ],
    'symlink and a directory one name apart in case, a file under the directory': [
      dirEntry('d'),
      dirEntry('d/sub'),
      linkEntry('d/L', '..'),
      dirEntry('d/l'),
      fileEntry('d/l/pwned', PAYLOAD),
    ],
    'two symlinks one name apart in case': [
      dirEntry('d'),
      linkEntry('d/L', '.'),
      linkEntry('d/l', '..'),
    ],
    'fifo type': [{ path: 'p', type: 'fifo', mode: 0o644, size: 0, mtimeMs: 0 }],
    'device type': [{ path: 'dev', type: 'chardev', mode: 0o644, size: 0, mtimeMs: 0 }],
    'setuid mode': [fileEntry('s', PAYLOAD, 0o4755)],
    'duplicate path': [fileEntry('x', PAYLOAD), fileEntry('x', PAYLOAD)],
    'file without listed parent': [fileEntry('nodir/x', PAYLOAD)],
    'file under a file': [fileEntry('f', PAYLOAD), fileEntry('f/x', PAYLOAD)],
    'bad digest': [{ ...fileEntry('x', PAYLOAD), digest: '../../../outside' }],
  };
}

/** A table of one dir root 'out' from hand-made directories. */
export function rawTable(dirs: [string, DirRows][], groups: [string, number][] = []): Buffer {
  const root: TableRoot = { name: 'out', kind: 'dir', mode: 0o755, mtimeMs: 1, dirs };
  return encodeTable({ groups }, [root]);
}

/** Rows of a directory: files (of content 'xxx') and directories by name. */
export function rows(...entries: [number, string][]): DirRows {
  const d = new DirRows();
  for (const [kind, name] of entries) {
    const j = d.add(kind, name, 0o644, kind === ROW.file ? 3 : 0, 1, 0);
    if (kind === ROW.file) d.setDigest(j, hex('xxx'));
  }
  return d;
}

/** A table whose one file 'x' is 3 bytes at `offset` of group `gi` (8 bytes, the only one). */
export function placedTable(offset: number, gi: number): Buffer {
  const d = rows([ROW.file, 'x']);
  d.set(0, 5, gi);
  d.set(0, 6, offset);
  return rawTable([['', d]], [[hex('the group'), 8]]);
}

function links(...entries: [string, string][]): DirRows {
  const d = new DirRows();
  for (const [name, target] of entries) d.addSymlink(name, 0o777, 1, target);
  return d;
}

/** One symlink row whose anchor number (its size: table.ts) is `anchor`. */
function anchoredLink(name: string, target: string, anchor: number): DirRows {
  const d = links([name, target]);
  d.set(0, 2, anchor);
  return d;
}

/** [what, a hostile table, the error it is refused with]. */
export function hostileTables(): [string, Buffer, string][] {
  return [
    ['a name with a slash', rawTable([['', rows([ROW.file, '../pwned'])]]), 'StoreError'],
    ['an empty name', rawTable([['', rows([ROW.file, ''])]]), 'StoreError'],
    ['a dot-dot directory', rawTable([['', rows([ROW.dir, '..'])]]), 'UnsafeEntryError'],
    [
      'rows of a directory nothing lists',
      rawTable([
        ['', rows([ROW.file, 'a'])],
        ['../outside', rows([ROW.file, 'pwned'])],
      ]),
      'StoreError',
    ],
    [
      'rows under a file',
      rawTable([
        ['', rows([ROW.file, 'f'])],
        ['f', rows([ROW.file, 'x'])],
      ]),
      'StoreError',
    ],
    ['an unknown kind', rawTable([['', rows([7, 'dev'])]]), 'StoreError'],
    [
      'a duplicate name',
      rawTable([['', rows([ROW.file, 'x'], [ROW.file, 'x'])]]),
      'UnsafeEntryError',
    ],
    ['a slice beyond its group', placedTable(6, 0), 'StoreError'],
    ['a group that is not listed', placedTable(0, 1), 'StoreError'],
    ['a fractional group index', placedTable(0, 0.5), 'StoreError'],
    ['a negative offset in its group', placedTable(-1, 0), 'StoreError'],
    [
      'a group listed twice',
      rawTable(
        [['', rows([ROW.file, 'x'])]],
        [
          [hex('the group'), 8],
          [hex('the group'), 9],
        ],
      ),
      'StoreError',
    ],
    [
      'a fractional group size',
      rawTable([['', rows([ROW.file, 'x'])]], [[hex('g'), 7.5]]),
      'StoreError',
    ],
    ['a symlink pointing out', rawTable([['', links(['l', '../../outside'])]]), 'UnsafeEntryError'],
    [
      'an anchored symlink with .. after a name',
      rawTable([['', anchoredLink('l', '../a/../../outside', 1)]]),
      'UnsafeEntryError',
    ],
    [
      'a symlink with an unknown anchor',
      rawTable([['', anchoredLink('l', '../../outside', 9)]]),
      'UnsafeEntryError',
    ],
    [
      'a symlink escaping through a symlink spelled in another case',
      rawTable([
        ['', rows([ROW.dir, 'd1'])],
        ['d1', rows([ROW.dir, 'd2'])],
        ['d1/d2', links(['B', '../..'], ['e', 'b/../../..'])],
      ]),
      'UnsafeEntryError',
    ],
  ];
}
