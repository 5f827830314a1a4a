/**
 * Issue 12 row 3: a cached path excludes the sources under it the way the workspace's
 * filesystem compares names, so `path: Out` excludes the `out/` a build writes on Windows and
 * macOS (Windows path rules injected; a case-folding FUSE mount for the real thing).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { computeKey } from '../../src/key/index.js';
import { foldsNames, sourceExcluder } from '../../src/key/sources.js';
import { caseFoldingSkipReason, mountCaseFolding } from '../../test-support/casefold.js';
import { cleanup, inputs, makeTree, writeTree } from './helpers.js';

afterEach(cleanup);

const noFolding = await caseFoldingSkipReason();
/** A test on a case-folding mount, or skipped with the reason in its name. */
function onFoldingMount(name: string, fn: () => Promise<void>): void {
  if (noFolding === undefined) it(name, fn);
  else it.skip(`${name} (skipped: ${noFolding})`, fn);
}

describe('sourceExcluder: cached paths compared as the filesystem compares names', () => {
  const win = { path: path.win32, folds: true };
  const cases: [string, string[], string, boolean][] = [
    ['the build writes out/ under path Out', ['Out'], 'out/prog', true],
    ['the build writes OUT/ under path out', ['out'], 'OUT/bin/prog.exe', true],
    ['a nested path, case differing in every segment', ['Build\\Out'], 'build/OUT/x.o', true],
    ['an absolute path with another drive-letter case', ['c:\\WS\\Out'], 'out/prog', true],
    ['a name that only begins with the path', ['Out'], 'outer/prog', false],
    ['a source beside it', ['Out'], 'src/main.c', false],
    ['.git in any case', [], '.GIT/config', true],
  ];
  it.each(cases)('win32: %s', (_label, excluded, rel, want) => {
    expect(sourceExcluder('C:\\ws', excluded, win)(rel)).toBe(want);
  });

  it('posix on a filesystem that does not fold: Out and out are two directories', () => {
    const linux = { path: path.posix, folds: false };
    expect(sourceExcluder('/ws', ['Out'], linux)('out/prog')).toBe(false);
    expect(sourceExcluder('/ws', ['Out'], linux)('Out/prog')).toBe(true);
  });

  it('posix on a folding filesystem (macOS): Out and out are one', () => {
    const mac = { path: path.posix, folds: true };
    expect(sourceExcluder('/Users/me/ws', ['Out'], mac)('out/prog')).toBe(true);
    expect(sourceExcluder('/Users/me/WS', ['/users/ME/ws/Out'], mac)('OUT/prog')).toBe(true);
  });
});

describe('foldsNames: probed, nothing written', () => {
  it('a case-sensitive directory does not fold', () => {
    const dir = makeTree({ Makefile: 'all:\n' });
    expect(foldsNames(dir, 'linux')).toBe(false);
    expect(foldsNames(dir, 'darwin')).toBe(false); // a case-sensitive APFS volume
  });

  it('with nothing to probe, Windows and macOS are taken to fold', () => {
    const dir = makeTree({ '1/2': '' });
    expect(foldsNames(dir, 'linux')).toBe(false);
    expect(foldsNames(dir, 'win32')).toBe(true);
    expect(foldsNames(dir, 'darwin')).toBe(true);
  });

  onFoldingMount('a case-folding mount folds', async () => {
    const mount = await mountCaseFolding();
    try {
      writeTree(mount.dir, { Makefile: 'all:\n' });
      expect(foldsNames(mount.dir, 'linux')).toBe(true);
    } finally {
      await mount.close();
    }
  });
});

describe('on a case-folding filesystem, path Out keeps the build output out of the key', () => {
  const tree = { Makefile: 'all:\n\tcc -o out/prog src/main.c\n', 'src/main.c': 'int main;\n' };
  for (const [label, sources] of [
    ['every file (no git)', []],
    ['a glob', ['**']],
  ] as const) {
    onFoldingMount(`${label}: the key after the build is the key before it`, async () => {
      const mount = await mountCaseFolding();
      try {
        const ws = path.join(mount.dir, 'ws');
        mkdirSync(ws);
        writeTree(ws, tree);
        const over = {
          sources: [...sources],
          paths: ['Out'],
          excludePaths: [path.join(ws, 'Out')],
        };
        const before = await computeKey(inputs(ws, over));
        // The build writes out/, which on this filesystem is the cached Out/.
        mkdirSync(path.join(ws, 'out'));
        writeFileSync(path.join(ws, 'out', 'prog'), 'binary');
        const after = await computeKey(inputs(ws, over));
        expect(Object.keys(after.manifest.files)).toEqual(['Makefile', 'src/main.c']);
        expect(after.key).toBe(before.key);
      } finally {
        await mount.close();
      }
    });
  }
});
