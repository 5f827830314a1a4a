/**
 * The git fast path: ids of tracked, unmodified files come from git's index; everything else is
 * hashed by us as a git blob id. The key must be the same as hashing every file.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { cpSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { computeKey, type CacheKey } from '../../src/key/index.js';
import {
  blob,
  cleanup,
  component,
  git,
  inputs,
  makeRepo,
  makeTree,
  tempDir,
  writeTree,
} from './helpers.js';

afterEach(cleanup);

const NODE_MODULES = path.resolve('node_modules');

/** A real tree: whole packages copied from node_modules (sorted) until at least `min` files. */
function copyOfNodeModules(dest: string, min: number): number {
  let count = 0;
  for (const name of readdirSync(NODE_MODULES).sort()) {
    if (name.startsWith('.') || name.startsWith('@')) continue;
    const src = path.join(NODE_MODULES, name);
    cpSync(src, path.join(dest, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
    count += (
      readdirSync(src, { recursive: true, withFileTypes: true }) as { isDirectory(): boolean }[]
    ).filter((e) => !e.isDirectory()).length;
    if (count >= min) break;
  }
  // A symlink and an executable, as a real tree has them.
  symlinkSync('node_modules', path.join(dest, 'modules-link'));
  writeFileSync(path.join(dest, 'build.sh'), '#!/bin/sh\nmake\n', { mode: 0o755 });
  return count;
}

/** Ids of the index (`git ls-files -s`), the oracle for the fast path. */
function indexIds(repo: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rec of git(repo, 'ls-files', '-s', '-z').split('\0')) {
    if (rec === '') continue;
    const [meta, p] = rec.split('\t') as [string, string];
    const [mode, id] = meta.split(' ') as [string, string];
    out[p] = mode === '120000' ? `link:${id}` : id;
  }
  return out;
}

describe('git fast path on a real tree', () => {
  it('gives the same key as hashing every file, with and without .git', async () => {
    const repo = tempDir();
    expect(copyOfNodeModules(repo, 1500)).toBeGreaterThanOrEqual(1500);
    git(repo, 'init', '-q');
    git(repo, 'add', '-A', '-f'); // -f: some packages ship a .gitignore of their own
    git(repo, 'commit', '-q', '-m', 'tree');

    const withGit = await computeKey(inputs(repo));
    expect(component(withGit, 'sources')?.value).toBe('files tracked by git');
    expect(withGit.manifest.files).toEqual(indexIds(repo));

    // Same directory, git switched off: every file is read and hashed (in worker threads).
    const hashed = await computeKey(inputs(repo, { useGit: false }));
    expect(component(hashed, 'sources')?.value).toBe('every file under the workspace');
    expect(hashed.manifest.files).toEqual(withGit.manifest.files);
    expect(hashed.key).toBe(withGit.key);

    // The same tree with .git deleted.
    rmSync(path.join(repo, '.git'), { recursive: true, force: true });
    const noGit = await computeKey(inputs(repo));
    expect(component(noGit, 'sources')?.value).toBe('every file under the workspace');
    expect(noGit.key).toBe(withGit.key);
  });

  it('takes ids from the index for files git reports unmodified', async () => {
    const ws = makeRepo({ 'a.txt': 'committed\n', 'b.txt': 'b\n' });
    // Git is told not to look at a.txt, so it reports it unmodified: its id is the index's.
    git(ws, 'update-index', '--assume-unchanged', 'a.txt');
    writeTree(ws, { 'a.txt': 'edited behind git\n' });
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files['a.txt']).toBe(blob('committed\n'));
    expect((await computeKey(inputs(ws, { useGit: false }))).manifest.files['a.txt']).toBe(
      blob('edited behind git\n'),
    );
  });
});

describe('git fast path == hashing every file, whatever the state of the work tree', () => {
  const TREE = {
    '.gitignore': 'ignored/\n',
    'src/a.c': 'a\n',
    'src/b.c': 'b\n',
    'include/a.h': 'h\n',
    Makefile: 'all:\n',
    link: { link: 'src/a.c' },
  };
  type Case = { what: string; change: (ws: string) => void };
  const cases: Case[] = [
    { what: 'a clean checkout', change: () => undefined },
    { what: 'a modified file', change: (ws) => writeTree(ws, { 'src/a.c': 'a, edited\n' }) },
    {
      what: 'a modified, staged file',
      change: (ws) => (writeTree(ws, { 'src/a.c': 'staged\n' }), git(ws, 'add', 'src/a.c')),
    },
    {
      what: 'staged, then modified again',
      change: (ws) => {
        writeTree(ws, { 'src/a.c': 'staged\n' });
        git(ws, 'add', 'src/a.c');
        writeTree(ws, { 'src/a.c': 'and again\n' });
      },
    },
    { what: 'a deleted file', change: (ws) => rmSync(path.join(ws, 'src/b.c')) },
    { what: 'an untracked file', change: (ws) => writeTree(ws, { 'src/new.c': 'n\n' }) },
    { what: 'an ignored file', change: (ws) => writeTree(ws, { 'ignored/x.o': 'o' }) },
    {
      what: 'an intent-to-add file',
      change: (ws) => (writeTree(ws, { 'src/ita.c': 'i\n' }), git(ws, 'add', '-N', 'src/ita.c')),
    },
    {
      what: 'a file replaced by a symlink',
      change: (ws) => writeTree(ws, { 'src/b.c': { link: 'a.c' } }),
    },
    { what: 'a retargeted symlink', change: (ws) => writeTree(ws, { link: { link: 'src/b.c' } }) },
    {
      what: 'a touched file (stat changed, content not)',
      change: (ws) => writeTree(ws, { 'src/a.c': 'a\n' }),
    },
    {
      what: 'a renamed file',
      change: (ws) => git(ws, 'mv', 'src/b.c', 'src/c.c'),
    },
  ];

  const ids = (k: CacheKey) => k.manifest.files;

  it.each(cases)('$what (globbed sources)', async ({ change }) => {
    const ws = makeRepo(TREE);
    change(ws);
    const fast = await computeKey(inputs(ws, { sources: ['**'] }));
    const slow = await computeKey(inputs(ws, { sources: ['**'], useGit: false }));
    expect(ids(fast)).toEqual(ids(slow));
    expect(fast.key).toBe(slow.key);
  });

  it.each(cases)(
    '$what (tracked files, each id as hashing the file alone gives it)',
    async ({ change }) => {
      const ws = makeRepo(TREE);
      change(ws);
      const key = await computeKey(inputs(ws));
      for (const [rel, id] of Object.entries(ids(key))) {
        const plain = makeTree({});
        cpSync(path.join(ws, rel), path.join(plain, 'f'), { verbatimSymlinks: true });
        expect(`${rel} ${(await computeKey(inputs(plain))).manifest.files['f']}`).toBe(
          `${rel} ${id}`,
        );
      }
    },
  );

  it('sees modified files when the workspace is a subdirectory of the repository', async () => {
    const repo = makeRepo({ 'top.c': 't\n', 'pkg/y.c': 'y\n', 'pkg/z.c': 'z\n' });
    const ws = path.join(repo, 'pkg');
    writeTree(ws, { 'y.c': 'y, edited\n' });
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files).toEqual({ 'y.c': blob('y, edited\n'), 'z.c': blob('z\n') });
  });

  it('hashes every file of a submodule with changes', async () => {
    const sub = makeRepo({ 's.txt': 's\n' });
    const ws = makeRepo({ 'm.txt': 'm\n' });
    git(ws, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'vendor/sub');
    git(ws, 'commit', '-q', '-m', 'submodule');
    expect((await computeKey(inputs(ws))).manifest.files['vendor/sub/s.txt']).toBe(blob('s\n'));
    writeTree(ws, { 'vendor/sub/s.txt': 's, edited\n' });
    expect((await computeKey(inputs(ws))).manifest.files['vendor/sub/s.txt']).toBe(
      blob('s, edited\n'),
    );
  });
});

describe('sha256 repositories', () => {
  it('uses sha256 blob ids, from the index and for modified files alike', async () => {
    const ws = makeTree({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    try {
      git(ws, 'init', '-q', '--object-format=sha256');
    } catch {
      return; // a git without sha256 support: nothing to test here
    }
    git(ws, 'add', '-A');
    git(ws, 'commit', '-q', '-m', 'init');
    writeTree(ws, { 'b.txt': 'b, edited\n' });
    const key = await computeKey(inputs(ws));
    const oracle = (rel: string) => git(ws, 'hash-object', '--no-filters', rel).trim();
    expect(key.manifest.files['a.txt']).toMatch(/^[0-9a-f]{64}$/);
    expect(key.manifest.files).toEqual({ 'a.txt': oracle('a.txt'), 'b.txt': oracle('b.txt') });
  });
});
