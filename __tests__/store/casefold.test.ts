/**
 * Case-insensitive, normalisation-insensitive filesystems (APFS, HFS+, NTFS; issue 12 rows 1,
 * 8 and 12): names are compared folded wherever containment is decided, names that are one
 * name where an entry is restored are refused there (and only there), and Windows symlinks get
 * the kind of what they point to. The restores run on a case-folding FUSE mount
 * (test-support/casefold.ts), skipped, saying why, only where none can be mounted.
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { foldName, symlinkKinds } from '../../src/store/fold.js';
import { parseManifest, type ManifestRoot } from '../../src/store/manifest.js';
import { sha256 } from '../../src/util/bytes.js';
import { tableOf } from '../../test-support/store/tables.js';
import { caseFoldingSkipReason } from '../../test-support/casefold.js';
import { CASE_CHAIN, PAYLOAD } from './hostile-cases.js';
import {
  dirEntry,
  dirManifest,
  fileEntry,
  linkEntry,
  snapshotTree,
  withFoldingSandbox,
  withSandbox,
  writeTree,
  type Sandbox,
} from './helpers.js';

const noFolding = await caseFoldingSkipReason();
/** A test on a case-folding mount, or skipped with the reason in its name. */
function onFoldingMount(name: string, fn: () => Promise<void>): void {
  if (noFolding === undefined) it(name, fn);
  else it.skip(`${name} (skipped: ${noFolding})`, fn);
}

function request(key: string, out: string): Parameters<LocalStore['save']>[0] {
  return {
    key,
    package: 'p',
    version: '1',
    hash: sha256(key),
    platform: 'linux',
    variant: 'rel',
    roots: [{ name: 'out', absPath: out }],
    groupSmallFiles: false,
  };
}

/** Runs `fn` with the workflow commands it prints (core.warning) collected instead. */
async function collectingWarnings<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const warnings: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const text = String(chunk);
    if (text.startsWith('::warning::')) {
      warnings.push(text.trim());
      return true;
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    return [await fn(), warnings];
  } finally {
    process.stdout.write = write;
  }
}

/** Every symlink under `dir` (recursively) whose real path is not under `inside`. */
async function linksLeaving(dir: string, inside: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await fs.readdir(dir)) {
    const p = path.join(dir, name);
    const st = await fs.lstat(p);
    if (st.isDirectory()) out.push(...(await linksLeaving(p, inside)));
    if (!st.isSymbolicLink()) continue;
    let real: string;
    try {
      real = realpathSync.native(p);
    } catch {
      continue; // resolves to nothing
    }
    if (real !== inside && !real.startsWith(inside + path.sep)) out.push(`${p} -> ${real}`);
  }
  return out;
}

describe('foldName', () => {
  it('takes names differing only in case, Unicode form, ignorables or trailing dots as one', () => {
    const same: [string, string][] = [
      ['Foo.TXT', 'foo.txt'],
      ['\u00e9', 'e\u0301'], // NFC and NFD
      ['\u00c9', 'e\u0301'], // and case
      ['stra\u00dfe', 'STRASSE'], // full case folding
      ['\u212a', 'k'], // Kelvin sign
      ['\u017f', 'S'], // long s
      ['.g\u200cit', '.GIT'], // HFS+ leaves out default-ignorable code points
      ['name. .', 'NAME'], // Win32 drops trailing dots and spaces
    ];
    for (const [a, b] of same) expect([a, b, foldName(a)]).toEqual([a, b, foldName(b)]);
    const apart: [string, string][] = [
      ['a', 'b'],
      ['e', '\u00e9'],
      ['.a', 'a'],
      ['...', '....'],
    ];
    for (const [a, b] of apart) expect([a, b, foldName(a) === foldName(b)]).toEqual([a, b, false]);
  });
});

describe('containment under case folding (parseManifest)', () => {
  it('refuses a symlink chain that leaves its root only where names fold', () => {
    expect(() => parseManifest(dirManifest(CASE_CHAIN))).toThrow(/points outside its root/);
  });

  it('refuses a symlink sharing its folded name with another entry, in any directory', () => {
    const cases = [
      [linkEntry('L', '.'), dirEntry('l')],
      [dirEntry('a'), dirEntry('A'), linkEntry('a/X', '.'), fileEntry('A/x', PAYLOAD)],
      [linkEntry('\u00e9', '.'), fileEntry('e\u0301', PAYLOAD)],
    ];
    for (const entries of cases) {
      expect(() => parseManifest(dirManifest(entries))).toThrow(/one name on a case-insensitive/);
    }
  });

  it('accepts names colliding without a symlink, and links resolving inside however folded', () => {
    const m = parseManifest(
      dirManifest([
        fileEntry('Foo.txt', PAYLOAD),
        fileEntry('foo.txt', PAYLOAD),
        dirEntry('d'),
        linkEntry('d/B', '..'),
        linkEntry('d/x', 'b/d/B'),
      ]),
    );
    expect(m.roots[0]?.entries.length).toBe(5);
  });
});

describe('symlink kinds for Windows (symlinkKinds)', () => {
  it('a link is a directory link when it resolves to a directory of the entry', () => {
    const root = parseManifest(
      dirManifest([
        dirEntry('a'),
        linkEntry('a/up', '..'),
        linkEntry('a/later', '../z'), // made before the directory it points to exists
        linkEntry('a/viaLink', 'later'),
        linkEntry('a/file', '../z/f.txt'),
        linkEntry('a/nowhere', 'missing'),
        linkEntry('a/otherCase', '../Z'),
        dirEntry('z'),
        fileEntry('z/f.txt', PAYLOAD),
      ]),
    ).roots[0] as ManifestRoot;
    const kinds = symlinkKinds(root);
    const byPath = Object.fromEntries([...kinds].map(([e, k]) => [e.path, k]));
    expect(byPath).toEqual({
      'a/up': 'dir',
      'a/later': 'dir',
      'a/viaLink': 'dir',
      'a/file': 'file',
      'a/nowhere': 'file',
      'a/otherCase': 'dir',
    });
  });
});

describe('restoring onto a case-insensitive filesystem', () => {
  onFoldingMount('the symlink chain of issue 12 row 1 is refused, nothing leads outside', () =>
    withFoldingSandbox(async (sb, around) => {
      const out = path.join(sb.ws, 'out');
      await writeTree(out, { 'keep.txt': 'keep' });
      const store = await LocalStore.open(sb.store);
      const key = 'clyde-chain';
      await store.save(request(key, out));
      const artifact = path.join(sb.store, 'p', '1', sha256(key), 'artifact');
      await fs.writeFile(artifact, tableOf(dirManifest(CASE_CHAIN)));
      const before = await snapshotTree(sb.ws);
      await expect(store.restore(key, [{ name: 'out', absPath: out }])).rejects.toMatchObject({
        name: 'UnsafeEntryError',
      });
      expect(await linksLeaving(sb.ws, out)).toEqual([]);
      expect(await snapshotTree(sb.ws)).toEqual(before);
      expect((await fs.readdir(around)).sort()).toEqual(['backing', 'mnt']);
    }),
  );

  onFoldingMount(
    'names one apart in case are refused with both named, the workspace untouched (row 8)',
    () =>
      withSandbox(async (linux) => {
        // Saved where case tells names apart (Linux), restored where it does not.
        const src = path.join(linux.ws, 'out');
        await writeTree(src, { 'Foo.txt': 'upper', 'foo.txt': 'lower', 'sub/a.txt': 'a' });
        const store = await LocalStore.open(linux.store);
        const key = 'clyde-cases';
        await store.save(request(key, src));
        await withFoldingSandbox(async (sb: Sandbox, around) => {
          const out = path.join(sb.ws, 'out');
          await writeTree(out, { 'keep.txt': 'keep' });
          const before = await snapshotTree(sb.ws);
          const err = await store.restore(key, [{ name: 'out', absPath: out }]).then(
            () => new Error('restored'),
            (e: unknown) => e as Error,
          );
          expect(err.name).toBe('StoreError');
          expect(err.message).toMatch(/"Foo\.txt" and "foo\.txt" differ only in case/);
          expect(await snapshotTree(sb.ws)).toEqual(before);
          expect((await fs.readdir(around)).sort()).toEqual(['backing', 'mnt']);
        });
        // where names are told apart, both come back
        const again = path.join(linux.ws, 'again');
        await store.restore(key, [{ name: 'out', absPath: again }]);
        expect((await fs.readdir(again)).sort()).toEqual(['Foo.txt', 'foo.txt', 'sub']);
        expect(await fs.readFile(path.join(again, 'foo.txt'), 'utf8')).toBe('lower');
      }),
  );

  onFoldingMount(
    'a save on Linux leaves out symlinks that would escape or collide where names fold',
    () =>
      withSandbox(async (linux) => {
        const src = path.join(linux.ws, 'out');
        await writeTree(src, { 'd1/d2/c': 'file c', 'd1/d2/ok.txt': 'ok' });
        const d2 = path.join(src, 'd1', 'd2');
        await fs.symlink('../..', path.join(d2, 'B'));
        await fs.symlink('b/../../..', path.join(d2, 'e'));
        await fs.symlink('ok.txt', path.join(d2, 'C'));
        const store = await LocalStore.open(linux.store);
        const [saved, warnings] = await collectingWarnings(() =>
          store.save(request('clyde-links', src)),
        );
        expect(warnings.sort()).toEqual([
          expect.stringMatching(/symlink out\/d1\/d2\/C: another name in its directory/),
          expect.stringMatching(/symlink out\/d1\/d2\/e: it points outside out/),
        ]);
        await withFoldingSandbox(async (sb, around) => {
          const out = path.join(sb.ws, 'out');
          await store.restore(saved.entry.key, [{ name: 'out', absPath: out }]);
          expect((await fs.readdir(path.join(out, 'd1', 'd2'))).sort()).toEqual([
            'B',
            'c',
            'ok.txt',
          ]);
          expect(await linksLeaving(sb.ws, out)).toEqual([]);
          expect((await fs.readdir(around)).sort()).toEqual(['backing', 'mnt']);
        });
      }),
  );
});
