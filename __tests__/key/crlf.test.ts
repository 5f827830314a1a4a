/**
 * Issue 12 row 7: a CRLF checkout (core.autocrlf=true) hashes to the ids git keeps, whether a
 * file's id comes from git's index, is computed for an edited or untracked file, or comes from
 * the no-git walk; git itself (`git hash-object`, `git add`) is the oracle.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { computeKey } from '../../src/key/index.js';
import { hashPaths, LARGE_FILE_BYTES, type EolConversion } from '../../src/key/hashing.js';
import { blob, cleanup, component, git, inputs, makeRepo, makeTree, tempDir } from './helpers.js';

afterEach(cleanup);

const TREE = {
  '.gitattributes': '*.win text eol=crlf\n*.raw -text\n*.auto text=auto\n',
  'README.md': 'line one\nline two\n',
  'src/a.c': 'int a;\nint b;\n',
  'data.bin': Buffer.from([0, 1, 13, 10, 2, 10]),
  'lone.txt': 'a\rb\n',
  'x.win': 'w\nx\n',
  'y.raw': 'r\nr\n',
  'z.auto': 'z\nz\n',
};

/** A clone of a repository holding TREE (LF, as committed) made with core.autocrlf=true. */
function crlfClone(extra: Record<string, string> = {}): string {
  const origin = makeRepo({ ...TREE, ...extra });
  const clone = path.join(tempDir(), 'clone');
  git(path.dirname(clone), 'clone', '-q', '-c', 'core.autocrlf=true', origin, clone);
  return clone;
}

/** `git hash-object <rel>` in `repo`: the id git gives the file, conversions applied. */
function hashObject(repo: string, rel: string): string {
  return git(repo, 'hash-object', '--', rel).trim();
}

/** The id `git add` stores for `rel` (git's own rules, the safer-autocrlf one included). */
function addedId(repo: string, rel: string): string {
  git(repo, 'add', '--', rel);
  return git(repo, 'ls-files', '-s', '--', rel).split(' ')[1] as string;
}

describe('a core.autocrlf=true clone', () => {
  it('is checked out with CRLF, and every path gives the ids git gives', async () => {
    const ws = crlfClone();
    expect(readFileSync(path.join(ws, 'README.md'), 'utf8')).toBe('line one\r\nline two\r\n');
    const viaGit = await computeKey(inputs(ws));
    const viaWalk = await computeKey(inputs(ws, { useGit: false }));
    for (const [rel, id] of Object.entries(viaWalk.manifest.files)) {
      expect([rel, id]).toEqual([rel, hashObject(ws, rel)]);
    }
    expect(viaWalk.manifest.files).toEqual(viaGit.manifest.files);
    expect(component(viaWalk, 'sources')?.hash).toBe(component(viaGit, 'sources')?.hash);
  });

  it('walked without .git where git is set to autocrlf (a Windows runner), gives the same key', async () => {
    const ws = crlfClone();
    const viaGit = await computeKey(inputs(ws));
    rmSync(path.join(ws, '.git'), { recursive: true, force: true });
    // Git for Windows sets core.autocrlf=true in its system config; a global one does here.
    const config = path.join(tempDir(), 'gitconfig');
    writeFileSync(config, '[core]\n\tautocrlf = true\n');
    const saved = process.env['GIT_CONFIG_GLOBAL'];
    process.env['GIT_CONFIG_GLOBAL'] = config;
    try {
      const walked = await computeKey(inputs(ws));
      expect(component(walked, 'sources')?.value).toBe('every file under the workspace');
      expect(walked.manifest.files).toEqual(viaGit.manifest.files);
      expect(walked.key).toBe(viaGit.key);
    } finally {
      if (saved === undefined) delete process.env['GIT_CONFIG_GLOBAL'];
      else process.env['GIT_CONFIG_GLOBAL'] = saved;
    }
  });

  it('an edited file (CRLF lines added) and an untracked one get the id git would store', async () => {
    const ws = crlfClone();
    appendFileSync(path.join(ws, 'src/a.c'), 'int c;\r\n');
    appendFileSync(path.join(ws, 'x.win'), 'y\r\n');
    appendFileSync(path.join(ws, 'y.raw'), 'r\r\n');
    writeFileSync(path.join(ws, 'new.txt'), 'n\r\nm\r\n');
    writeFileSync(path.join(ws, 'new.bin'), Buffer.from([0, 13, 10]));
    const key = await computeKey(inputs(ws, { sources: ['**'] }));
    for (const rel of ['src/a.c', 'x.win', 'y.raw', 'new.txt', 'new.bin', 'lone.txt']) {
      expect([rel, key.manifest.files[rel]]).toEqual([rel, hashObject(ws, rel)]);
    }
    expect(key.manifest.files['src/a.c']).toBe(blob('int a;\nint b;\nint c;\n'));
    expect(key.manifest.files['y.raw']).toBe(blob('r\nr\nr\r\n')); // -text: as it is
  });

  it("a file committed with CRLFs keeps them when edited (git's safer autocrlf)", async () => {
    const origin = makeRepo(TREE);
    writeFileSync(path.join(origin, 'dos.txt'), 'c\r\n');
    git(origin, 'add', 'dos.txt');
    git(origin, 'commit', '-q', '-m', 'dos');
    const ws = path.join(tempDir(), 'clone');
    git(path.dirname(ws), 'clone', '-q', '-c', 'core.autocrlf=true', origin, ws);
    appendFileSync(path.join(ws, 'dos.txt'), 'd\r\n');
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files['dos.txt']).toBe(addedId(ws, 'dos.txt'));
    expect(key.manifest.files['dos.txt']).toBe(blob('c\r\nd\r\n'));
  });

  it('with core.autocrlf=false and no attributes an edited file is its bytes', async () => {
    const ws = makeRepo({ 'a.txt': 'a\n' });
    writeFileSync(path.join(ws, 'a.txt'), 'a\r\nb\r\n');
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files['a.txt']).toBe(hashObject(ws, 'a.txt'));
    expect(key.manifest.files['a.txt']).toBe(blob('a\r\nb\r\n'));
  });
});

describe('hashPaths: conversions of large files, read in chunks', () => {
  // CRs at the 1 MiB chunk boundaries, one before an LF across it and one alone.
  const MiB = 1024 * 1024;
  const big = Buffer.alloc(LARGE_FILE_BYTES + 3 * MiB, 'x');
  for (let i = 99; i < big.length; i += 100) big[i] = 10;
  big[MiB - 1] = 13;
  big[MiB] = 10;
  big[2 * MiB - 1] = 13;
  big[2 * MiB] = 65;
  big[big.length - 2] = 13;
  big[big.length - 1] = 10;
  const lf = (b: Buffer) => {
    const out: number[] = [];
    b.forEach((c, i) => {
      if (!(c === 13 && b[i + 1] === 10)) out.push(c);
    });
    return Buffer.from(out);
  };
  const cases: [string, EolConversion, Buffer, Buffer][] = [
    ['text: each CR before an LF dropped, a lone CR kept', 'text', big, lf(big)],
    ['auto: a lone CR makes it binary, kept as it is', 'auto', big, big],
    [
      'auto: text with CRLFs across chunks',
      'auto',
      Buffer.from(big).fill(120, 2 * MiB - 1, 2 * MiB),
      lf(Buffer.from(big).fill(120, 2 * MiB - 1, 2 * MiB)),
    ],
    ['none: the bytes', 'none', big, big],
  ];
  it.each(cases)('%s', async (_label, conv, content, stored) => {
    const ws = makeTree({ 'big.txt': content });
    const ids = await hashPaths(ws, ['big.txt'], 'sha1', () => conv);
    expect(ids.get('big.txt')).toBe(blob(stored));
  });
});
