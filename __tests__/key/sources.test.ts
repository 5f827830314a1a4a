import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isInputError } from '../../src/errors.js';
import { computeKey, type CacheKey } from '../../src/key/index.js';
import { LARGE_FILE_BYTES } from '../../src/key/sources.js';
import {
  blob,
  captureStdout,
  cleanup,
  component,
  git,
  inputs,
  makeRepo,
  makeTree,
  writeTree,
} from './helpers.js';

afterEach(cleanup);

const files = (key: CacheKey) => Object.keys(key.manifest.files);

describe('default sources in a git work tree', () => {
  const TREE = {
    '.gitignore': 'build/\n',
    'src/a.c': 'a\n',
    'src/b.c': 'b\n',
    'README.md': 'readme\n',
  };

  it('hashes the tracked files only', async () => {
    const ws = makeRepo(TREE);
    const key = await computeKey(inputs(ws));
    expect(files(key)).toEqual(['.gitignore', 'README.md', 'src/a.c', 'src/b.c']);
    expect(component(key, 'sources')?.value).toBe('files tracked by git');
  });

  it('ignores untracked build outputs but not an edit to a tracked file', async () => {
    const ws = makeRepo(TREE);
    const before = await computeKey(inputs(ws));
    writeTree(ws, { 'build/app': 'binary', 'scratch.txt': 'untracked, not ignored' });
    const withOutputs = await computeKey(inputs(ws));
    expect(withOutputs.key).toBe(before.key);
    writeTree(ws, { 'src/a.c': 'a, edited\n' });
    const edited = await computeKey(inputs(ws));
    expect(edited.key).not.toBe(before.key);
    expect(edited.manifest.files['src/a.c']).toBe(blob('a, edited\n'));
  });

  it('skips a tracked file that was deleted from the work tree', async () => {
    const ws = makeRepo(TREE);
    rmSync(path.join(ws, 'src/b.c'));
    const key = await computeKey(inputs(ws));
    expect(files(key)).toEqual(['.gitignore', 'README.md', 'src/a.c']);
  });

  it('counts a staged but uncommitted file as tracked', async () => {
    const ws = makeRepo(TREE);
    writeTree(ws, { 'src/c.c': 'c\n' });
    git(ws, 'add', 'src/c.c');
    expect(files(await computeKey(inputs(ws)))).toContain('src/c.c');
  });

  it('lists only the subdirectory when the workspace is inside the repository', async () => {
    const repo = makeRepo({ 'top.txt': 'top\n', 'pkg/lib/x.c': 'x\n', 'pkg/y.c': 'y\n' });
    const ws = path.join(repo, 'pkg');
    writeTree(ws, { 'untracked.o': 'o' });
    const key = await computeKey(inputs(ws));
    expect(files(key)).toEqual(['lib/x.c', 'y.c']);
    expect(key.manifest.files['y.c']).toBe(blob('y\n'));
  });

  it('drops tracked files under excludePaths', async () => {
    const ws = makeRepo({ ...TREE, 'dist/index.js': 'bundle v1' });
    const excludePaths = [path.join(ws, 'dist')];
    const before = await computeKey(inputs(ws, { excludePaths }));
    expect(files(before)).not.toContain('dist/index.js');
    writeTree(ws, { 'dist/index.js': 'bundle v2' });
    expect((await computeKey(inputs(ws, { excludePaths }))).key).toBe(before.key);
  });

  it('drops tracked files under an excluded output whose name begins with ..', async () => {
    const ws = makeRepo({ ...TREE, '..out/o.txt': 'o', '..src/s.c': 's' });
    const key = await computeKey(inputs(ws, { excludePaths: [path.join(ws, '..out')] }));
    expect(files(key)).toEqual(['..src/s.c', '.gitignore', 'README.md', 'src/a.c', 'src/b.c']);
  });

  it('gives the same key for the same commit cloned into another directory', async () => {
    const ws = makeRepo(TREE);
    const clone = path.join(makeTree({}), 'clone');
    git(path.dirname(clone), 'clone', '-q', ws, clone);
    expect((await computeKey(inputs(clone))).key).toBe((await computeKey(inputs(ws))).key);
  });

  it('includes the files of an initialised submodule, skips an uninitialised one', async () => {
    const sub = makeRepo({ 's.txt': 's\n' });
    const ws = makeRepo({ 'm.txt': 'm\n' });
    git(ws, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'vendor/sub');
    git(ws, 'commit', '-q', '-m', 'submodule');
    expect(files(await computeKey(inputs(ws)))).toEqual([
      '.gitmodules',
      'm.txt',
      'vendor/sub/s.txt',
    ]);

    const clone = path.join(makeTree({}), 'clone');
    git(path.dirname(clone), 'clone', '-q', ws, clone);
    expect(files(await computeKey(inputs(clone)))).toEqual(['.gitmodules', 'm.txt']);
  });

  it('matches the all-files key of the same tree without git (no .git in either)', async () => {
    const ws = makeRepo({ 'a.txt': 'a', 'b/c.txt': 'c' });
    const plain = makeTree({ 'a.txt': 'a', 'b/c.txt': 'c' });
    const inRepo = await computeKey(inputs(ws));
    const noGit = await computeKey(inputs(plain));
    expect(component(inRepo, 'sources')?.hash).toBe(component(noGit, 'sources')?.hash);
  });
});

describe('default sources without git', () => {
  it('hashes every file under the workspace, minus .git and excludePaths', async () => {
    const ws = makeTree({
      'a.txt': 'a',
      'deep/er/b.txt': 'b',
      '.hidden': 'h',
      // Not a real repository: git refuses it, so every file is a source, minus .git itself.
      '.git/HEAD': 'garbage',
      'sub/.git': 'gitdir: /elsewhere',
      'out/bin': 'output',
    });
    let key: CacheKey | undefined;
    const out = await captureStdout(async () => {
      key = await computeKey(inputs(ws, { excludePaths: [path.join(ws, 'out')] }));
    });
    if (key === undefined) throw new Error('no key');
    // A .git that git cannot read is worth a warning: untracked outputs become sources.
    expect(out).toContain('::warning::git could not list the tracked files');
    expect(files(key)).toEqual(['.hidden', 'a.txt', 'deep/er/b.txt']);
    expect(component(key, 'sources')?.value).toBe('every file under the workspace');
    expect(component(key, 'sources')?.fileCount).toBe(3);
  });

  it('says nothing about git for a plain directory', async () => {
    const ws = makeTree({ 'a.txt': 'a' });
    const out = await captureStdout(async () => {
      await computeKey(inputs(ws));
    });
    expect(out).not.toContain('::warning::');
  });

  it('ignores empty directories', async () => {
    const ws = makeTree({ 'a.txt': 'a' });
    const before = await computeKey(inputs(ws));
    mkdirSync(path.join(ws, 'empty/nested'), { recursive: true });
    expect((await computeKey(inputs(ws))).key).toBe(before.key);
  });
});

describe('symlinks', () => {
  it('hashes the target string, not followed, and unlike a file holding the same text', async () => {
    const ws = makeTree({ 'target.txt': 'content', link: { link: 'target.txt' } });
    const key = await computeKey(inputs(ws));
    const linkHash = key.manifest.files['link'];
    expect(linkHash).toBeDefined();
    expect(linkHash).toBe(`link:${blob('target.txt')}`);
    expect(linkHash).not.toBe(blob('target.txt'));
    expect(linkHash).not.toBe(blob('content'));

    // Changing what the link points at changes its hash; changing the target's content does not.
    writeTree(ws, { 'target.txt': 'other content' });
    expect((await computeKey(inputs(ws))).manifest.files['link']).toBe(linkHash);
    writeTree(ws, { link: { link: './target.txt' } });
    expect((await computeKey(inputs(ws))).manifest.files['link']).not.toBe(linkHash);
  });

  it('does not descend into a symlinked directory and keeps dangling links', async () => {
    const outside = makeTree({ 'secret/x.txt': 'x' });
    const ws = makeTree({
      'a.txt': 'a',
      dir: { link: path.join(outside, 'secret') },
      dangling: { link: 'nowhere' },
    });
    const key = await computeKey(inputs(ws));
    expect(files(key)).toEqual(['a.txt', 'dangling', 'dir']);
  });
});

describe('glob sources', () => {
  const TREE = {
    'src/a.ts': 'a',
    'src/gen/g.ts': 'g',
    'src/gen/keep.ts': 'k',
    'src/readme.md': 'r',
    'lib/b.ts': 'b',
    'out/o.ts': 'o',
  };

  it('resolves patterns against the workspace, not the process directory', async () => {
    const ws = makeTree(TREE);
    expect(process.cwd()).not.toBe(ws);
    const key = await computeKey(inputs(ws, { sources: ['src/**/*.ts', 'lib'] }));
    expect(files(key)).toEqual(['lib/b.ts', 'src/a.ts', 'src/gen/g.ts', 'src/gen/keep.ts']);
    expect(component(key, 'sources')?.value).toBe('src/**/*.ts, lib');
  });

  it('applies !exclusions in order, as @actions/glob does', async () => {
    const ws = makeTree(TREE);
    const key = await computeKey(
      inputs(ws, { sources: ['./src/**', '!src/gen/**', 'src/gen/keep.ts', '!**/*.md'] }),
    );
    expect(files(key)).toEqual(['src/a.ts', 'src/gen/keep.ts']);
  });

  it('accepts absolute patterns inside the workspace', async () => {
    const ws = makeTree(TREE);
    const key = await computeKey(inputs(ws, { sources: [path.join(ws, 'lib', '*.ts')] }));
    expect(files(key)).toEqual(['lib/b.ts']);
  });

  it('never includes excludePaths or .git', async () => {
    const ws = makeTree({ ...TREE, '.git/config': 'x' });
    const key = await computeKey(
      inputs(ws, { sources: ['**'], excludePaths: [path.join(ws, 'out')] }),
    );
    expect(files(key)).toEqual([
      'lib/b.ts',
      'src/a.ts',
      'src/gen/g.ts',
      'src/gen/keep.ts',
      'src/readme.md',
    ]);
  });

  it('ignores blank lines and comments in the pattern list', async () => {
    const ws = makeTree(TREE);
    const key = await computeKey(inputs(ws, { sources: ['', '# comment', 'lib/**'] }));
    expect(files(key)).toEqual(['lib/b.ts']);
  });

  it.each([
    { sources: ['nope/**'], named: 'nope/**' },
    { sources: ['src/**', 'docs/*.md'], named: 'docs/*.md' },
    { sources: ['lib/**', 'src/gen/*.ts', '!src/gen/**'], named: 'src/gen/*.ts' },
    { sources: ['out/**'], named: 'out/**' }, // only matches a cached output
  ])('throws InputError naming sources and the pattern $named', async ({ sources, named }) => {
    const ws = makeTree(TREE);
    const err = await computeKey(
      inputs(ws, { sources, excludePaths: [path.join(ws, 'out')] }),
    ).catch((e: unknown) => e);
    expect(isInputError(err)).toBe(true);
    expect((err as { input: string }).input).toBe('sources');
    expect((err as Error).message).toContain(`'${named}'`);
  });

  it('throws InputError for a list of exclusions only', async () => {
    const ws = makeTree(TREE);
    const err = await computeKey(inputs(ws, { sources: ['!src/**'] })).catch((e: unknown) => e);
    expect(isInputError(err)).toBe(true);
    expect((err as { input: string }).input).toBe('sources');
  });

  it('throws InputError for a pattern reaching outside the workspace', async () => {
    const ws = makeTree(TREE);
    const outside = makeTree({ 'x.ts': 'x' });
    for (const sources of [['../*'], [path.join(outside, '*.ts')]]) {
      const err = await computeKey(inputs(ws, { sources })).catch((e: unknown) => e);
      expect(isInputError(err)).toBe(true);
      expect((err as { input: string }).input).toBe('sources');
    }
  });

  it('takes names beginning with .. for names inside the workspace, not for a way out', async () => {
    const ws = makeTree({ ...TREE, '..cache/a.txt': 'c', '..out/o.txt': 'o' });
    let key: CacheKey | undefined;
    await captureStdout(async () => {
      key = await computeKey(
        inputs(ws, { sources: ['**'], excludePaths: [path.join(ws, '..out')] }),
      );
    });
    expect(files(key!)).toEqual([
      '..cache/a.txt',
      'lib/b.ts',
      'out/o.ts',
      'src/a.ts',
      'src/gen/g.ts',
      'src/gen/keep.ts',
      'src/readme.md',
    ]);
  });

  it('treats glob characters in the workspace path literally', async () => {
    const parent = makeTree({});
    const ws = path.join(parent, 'ws[1]*?');
    writeTree(ws, { 'a.ts': 'a' });
    writeTree(parent, { 'ws1x/a.ts': 'decoy' });
    const key = await computeKey(inputs(ws, { sources: ['*.ts'] }));
    expect(key.manifest.files).toEqual({ 'a.ts': blob('a') });
  });
});

describe('hashing', () => {
  it('keeps a file whose name is also an Object.prototype property', async () => {
    const ws = makeTree(
      Object.fromEntries([
        ['__proto__', 'p'],
        ['constructor', 'c'],
      ]),
    );
    const key = await computeKey(inputs(ws));
    expect(files(key)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(key.manifest.files, '__proto__')?.value).toBe(blob('p'));
  });

  it('rejects a workspace that is not a directory', async () => {
    const ws = path.join(makeTree({}), 'missing');
    await expect(computeKey(inputs(ws))).rejects.toThrow('not a directory');
  });

  it('hashes a large file (read in chunks) to its git blob id', async () => {
    const big = Buffer.alloc(LARGE_FILE_BYTES + 12345);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const ws = makeTree({ 'big.bin': big, 'small.txt': 'small' });
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files['big.bin']).toBe(blob(big));
    expect(key.manifest.files['small.txt']).toBe(blob('small'));
  });

  it('without git set to autocrlf, hashes file contents as they are (crlf.test.ts: with it)', async () => {
    const ws = makeTree({ 'a.txt': 'x\r\n' });
    writeFileSync(path.join(ws, 'b.txt'), 'x\n');
    const saved = [process.env['GIT_CONFIG_GLOBAL'], process.env['GIT_CONFIG_NOSYSTEM']];
    process.env['GIT_CONFIG_GLOBAL'] = '/dev/null';
    process.env['GIT_CONFIG_NOSYSTEM'] = '1';
    try {
      const key = await computeKey(inputs(ws));
      expect(key.manifest.files['a.txt']).toBe(blob('x\r\n'));
      expect(key.manifest.files['b.txt']).toBe(blob('x\n'));
    } finally {
      if (saved[0] === undefined) delete process.env['GIT_CONFIG_GLOBAL'];
      else process.env['GIT_CONFIG_GLOBAL'] = saved[0];
      if (saved[1] === undefined) delete process.env['GIT_CONFIG_NOSYSTEM'];
      else process.env['GIT_CONFIG_NOSYSTEM'] = saved[1];
    }
  });
});
