/**
 * Hashing every file without git: the walk lists in byte order and feeds the hashing workers as
 * it goes. Ids are checked against git's own (`git hash-object --stdin-paths`).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { computeKey } from '../../src/key/index.js';
import { LARGE_FILE_BYTES } from '../../src/key/sources.js';
import { compareBytes as byteOrder } from '../../src/util/bytes.js';
import { compareBytes } from '../../src/util/bytes.js';
import { blob, cleanup, component, inputs, makeRepo, makeTree, type Tree } from './helpers.js';

afterEach(cleanup);

/** Git's blob ids of the regular files `rels` under `root`, in one git process. */
function gitIds(root: string, rels: readonly string[]): Record<string, string> {
  const out = execFileSync('git', ['hash-object', '--no-filters', '--stdin-paths'], {
    cwd: root,
    input: rels.join('\n'),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
    .trim()
    .split('\n');
  return Object.fromEntries(rels.map((rel, i) => [rel, out[i] as string]));
}

/** Names that sort differently by UTF-16 code unit, by locale, and by UTF-8 byte. */
const TRICKY = ['a.txt', 'a-b', 'B', 'é', 'ﬀ', '\u{1F600}', 'z'];

/** A tree of well over the worker threshold, with nested directories named like files. */
function bigTree(): Tree {
  const tree: Tree = {};
  for (let i = 0; i < 700; i++) tree[`d${i % 7}/f${i}.txt`] = `file ${i}\n`.repeat(i % 13);
  for (const name of TRICKY) {
    tree[`mix/${name}`] = name;
    tree[`mix/${name}x/inner`] = `${name} inner`;
  }
  tree['mix/a/b'] = 'directory a sorts after a-b and a.txt';
  tree['empty'] = '';
  return tree;
}

describe('byteOrder', () => {
  const strings = [
    '',
    'a',
    'a/',
    'a.txt',
    'a/b',
    'A',
    'é',
    '\u07ff',
    '\u0800',
    '\ud7ff',
    '\ue000',
    'ﬀ',
    '\uffff',
    '\u{10000}',
    '\u{1F600}',
    '\u{1F600}a',
    '\ud800', // lone surrogates: compareBytes sees U+FFFD for each
    '\udc00',
    '\ud800a',
    'x\ud83d',
    'x\ud83d\ude00',
  ];

  it('agrees with compareBytes on every pair', () => {
    for (const a of strings) {
      for (const b of strings) {
        expect([a, b, Math.sign(byteOrder(a, b))]).toEqual([a, b, Math.sign(compareBytes(a, b))]);
      }
    }
  });
});

describe('hashing every file without git', () => {
  it('lists in byte order and gives git blob ids, through the workers', async () => {
    const tree = bigTree();
    const ws = makeTree(tree);
    const key = await computeKey(inputs(ws));
    const rels = Object.keys(key.manifest.files);
    expect(rels).toEqual(Object.keys(tree).sort(compareBytes));
    expect(component(key, 'sources')?.fileCount).toBe(rels.length);
    expect(key.manifest.files).toEqual(gitIds(ws, rels));
  });

  it('gives the key of the same tree committed to git', async () => {
    const tree = bigTree();
    const repo = makeRepo({ ...tree, link: { link: 'mix/é' } });
    const plainWithLink = makeTree({ ...tree, link: { link: 'mix/é' } });
    const fromGit = await computeKey(inputs(repo));
    expect(component(fromGit, 'sources')?.value).toBe('files tracked by git');
    const walked = await computeKey(inputs(plainWithLink));
    expect(walked.manifest.files).toEqual(fromGit.manifest.files);
    expect(walked.key).toBe(fromGit.key);
  });

  it('prunes excluded directories and skips lockfiles in a large tree', async () => {
    const ws = makeTree({
      ...bigTree(),
      'out/a.bin': 'output',
      'out/deep/b.bin': 'output',
      'package-lock.json': '{"lockfileVersion": 3, "packages": {}}',
    });
    const key = await computeKey(
      inputs(ws, { excludePaths: [path.join(ws, 'out'), path.join(ws, 'd3')] }),
    );
    const rels = Object.keys(key.manifest.files);
    expect(rels.some((r) => r.startsWith('out/') || r.startsWith('d3/'))).toBe(false);
    expect(rels).not.toContain('package-lock.json');
    expect(rels.filter((r) => r.startsWith('d2/'))).toHaveLength(100);
  });

  it('hashes large files in chunks among many small ones', async () => {
    const big = Buffer.alloc(LARGE_FILE_BYTES + 3);
    for (let i = 0; i < big.length; i += 1000) big[i] = i % 253;
    const justUnder = big.subarray(0, LARGE_FILE_BYTES - 1);
    const ws = makeTree({ ...bigTree(), 'm/big.bin': big, 'm/under.bin': justUnder });
    const key = await computeKey(inputs(ws));
    expect(key.manifest.files['m/big.bin']).toBe(blob(big));
    expect(key.manifest.files['m/under.bin']).toBe(blob(justUnder));
    expect(key.manifest.files['d1/f1.txt']).toBe(blob('file 1\n'));
  });

  it('skips a FIFO without blocking on it, walked or globbed', async () => {
    const ws = makeTree(bigTree());
    try {
      execFileSync('mkfifo', [path.join(ws, 'mix', 'pipe')]);
    } catch {
      return; // no mkfifo on this platform
    }
    for (const sources of [[], ['**']]) {
      const key = await computeKey(inputs(ws, { sources }));
      expect(Object.keys(key.manifest.files)).not.toContain('mix/pipe');
      expect(key.manifest.files['mix/z']).toBe(blob('z'));
    }
  });
});
