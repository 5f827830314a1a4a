import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { cpSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  computeKey,
  hashManifest,
  KEY_SCHEMA,
  logKey,
  sanitizeKeyPart,
  type KeyInputs,
} from '../../src/key/index.js';
import {
  changedComponents,
  blob,
  captureStdout,
  cleanup,
  component,
  inputs,
  makeTree,
  tempDir,
  writeTree,
  type Tree,
} from './helpers.js';

afterEach(cleanup);

const hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

const BASE: Tree = {
  'src/main.c': 'int main(void) { return 0; }\n',
  'src/util.c': 'int util(void) { return 1; }\n',
  'include/util.h': 'int util(void);\n',
  'package-lock.json': '{"lockfileVersion": 3}\n',
  Makefile: 'all:\n\tcc src/*.c\n',
};
const CONFIG = 'cflags: -O2\ndefines:\n  NDEBUG: 1\n  LEVEL: 3\n';

describe('computeKey: what changes the key', () => {
  it('gives the same key for the same tree twice', async () => {
    const ws = makeTree(BASE);
    const a = await computeKey(inputs(ws, { config: CONFIG }));
    const b = await computeKey(inputs(ws, { config: CONFIG }));
    expect(b.key).toBe(a.key);
    expect(b.manifest).toEqual(a.manifest);
  });

  it('ignores modification times', async () => {
    const ws = makeTree(BASE);
    const before = await computeKey(inputs(ws));
    const later = new Date(Date.now() + 3_600_000);
    for (const rel of Object.keys(BASE)) utimesSync(path.join(ws, rel), later, later);
    expect((await computeKey(inputs(ws))).key).toBe(before.key);
  });

  it('gives the same key for the same tree in two different directories', async () => {
    const a = makeTree(BASE);
    const b = makeTree(BASE);
    expect(a).not.toBe(b);
    const ka = await computeKey(inputs(a, { config: CONFIG }));
    const kb = await computeKey(inputs(b, { config: CONFIG }));
    expect(kb.key).toBe(ka.key);
    expect(kb.manifest).toEqual(ka.manifest);
  });

  type Mutation = {
    what: string;
    /** Changes the tree on disk (optional) and/or the inputs. */
    change: (ws: string) => Partial<KeyInputs>;
    /** Components expected to change; [] means the key must stay the same. */
    changed: string[];
  };
  const mutations: Mutation[] = [
    {
      what: 'editing one source file',
      change: (ws) => (writeTree(ws, { 'src/util.c': 'int util(void) { return 2; }\n' }), {}),
      changed: ['sources'],
    },
    {
      what: 'adding a file',
      change: (ws) => (writeTree(ws, { 'src/new.c': '\n' }), {}),
      changed: ['sources'],
    },
    {
      what: 'deleting a file',
      change: (ws) => (rmSync(path.join(ws, 'src/util.c')), {}),
      changed: ['sources'],
    },
    {
      what: 'renaming a file',
      change: (ws) => (renameSync(path.join(ws, 'src/util.c'), path.join(ws, 'src/utils.c')), {}),
      changed: ['sources'],
    },
    {
      what: 'changing a lockfile',
      change: (ws) => (writeTree(ws, { 'package-lock.json': '{"lockfileVersion": 2}\n' }), {}),
      // A lockfile is its own component, not also a source file.
      changed: ['lockfile:package-lock.json'],
    },
    {
      what: 'a lockfile checked out with CRLF',
      change: (ws) => (writeTree(ws, { 'package-lock.json': '{"lockfileVersion": 3}\r\n' }), {}),
      // The lockfile component is normalised, and the lockfile is not also a source.
      changed: [],
    },
    {
      what: 'changing a config value',
      change: () => ({ config: CONFIG.replace('-O2', '-O3') }),
      changed: ['config'],
    },
    {
      what: 'reordering YAML keys',
      change: () => ({ config: 'defines:\n  LEVEL: 3\n  NDEBUG: 1\ncflags: -O2\n' }),
      changed: [],
    },
    {
      what: 'reformatting YAML',
      change: () => ({
        config: '# flags\n{ "cflags": "-O2", defines: {NDEBUG: 1,   LEVEL: 3} }\n\n',
      }),
      changed: [],
    },
    { what: 'changing the variant', change: () => ({ variant: 'debug' }), changed: ['variant'] },
    {
      what: 'changing the platform',
      change: () => ({ platform: 'linux-arm64' }),
      changed: ['platform'],
    },
    { what: 'changing the version', change: () => ({ version: '1.0.1' }), changed: ['version'] },
    { what: 'changing the name', change: () => ({ name: 'owner/other' }), changed: ['name'] },
    {
      what: 'changing the name only in a character the key string sanitises',
      change: () => ({ name: 'owner_repo' }),
      changed: ['name'],
    },
  ];

  it.each(mutations)('$what', async ({ change, changed }) => {
    const ws = makeTree(BASE);
    const before = await computeKey(inputs(ws, { config: CONFIG }));
    const over = change(ws);
    const after = await computeKey(inputs(ws, { config: CONFIG, ...over }));
    expect(changedComponents(before, after).sort()).toEqual([...changed].sort());
    if (changed.length === 0) expect(after.key).toBe(before.key);
    else expect(after.hash).not.toBe(before.hash);
  });

  it('keeps the prefix when only sources change, and changes it with the variant', async () => {
    const ws = makeTree(BASE);
    const before = await computeKey(inputs(ws));
    writeTree(ws, { 'src/main.c': 'changed\n' });
    const edited = await computeKey(inputs(ws));
    expect(edited.prefix).toBe(before.prefix);
    expect(edited.key).not.toBe(before.key);
    const debug = await computeKey(inputs(ws, { variant: 'debug' }));
    expect(debug.prefix).not.toBe(before.prefix);
  });

  it('changes with the cached paths, whatever their order or repeats', async () => {
    const ws = makeTree(BASE);
    const out = await computeKey(inputs(ws, { paths: ['out', 'build'] }));
    const same = await computeKey(inputs(ws, { paths: ['build', 'out', 'build'] }));
    const tools = await computeKey(inputs(ws, { paths: ['.tool-cache'] }));
    expect(same.key).toBe(out.key);
    expect(tools.key).not.toBe(out.key);
    expect(changedComponents(out, tools)).toEqual(['paths']);
    expect(component(out, 'paths')?.value).toBe('build, out');
    // Keeping links that leave the workspace makes entries of their own; off is the default.
    const links = await computeKey(inputs(ws, { paths: ['out', 'build'], keepOutsideLinks: true }));
    expect(changedComponents(out, links)).toEqual(['paths']);
    const off = await computeKey(inputs(ws, { paths: ['out', 'build'], keepOutsideLinks: false }));
    expect(off.key).toBe(out.key);
  });

  it('never lets cached outputs under excludePaths affect the key', async () => {
    const ws = makeTree({ ...BASE, 'out/app': 'binary v1', 'cache/obj/main.o': 'obj v1' });
    const excludePaths = [path.join(ws, 'out'), path.join(ws, 'cache') + path.sep];
    const before = await computeKey(inputs(ws, { excludePaths }));
    writeTree(ws, { 'out/app': 'binary v2', 'out/extra': 'x', 'cache/obj/util.o': 'obj' });
    const after = await computeKey(inputs(ws, { excludePaths }));
    expect(after.key).toBe(before.key);
    expect(Object.keys(after.manifest.files).some((p) => p.startsWith('out/'))).toBe(false);
    // Without the exclusion the same outputs are sources.
    const unexcluded = await computeKey(inputs(ws));
    expect(unexcluded.manifest.files['out/app']).toBe(blob('binary v2'));
  });
});

describe('computeKey: key string and manifest', () => {
  it('has the shape clyde-<name>-<platform>-<variant>-<hash> and a prefix without the hash', async () => {
    const ws = makeTree(BASE);
    const key = await computeKey(
      inputs(ws, { name: 'octo-org/my.lib', platform: 'linux x64', variant: 'rel+asan' }),
    );
    expect(key.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(key.prefix).toBe('clyde-octo_org_my.lib-linux_x64-rel_asan-');
    expect(key.key).toBe(key.prefix + key.hash);
    expect(key.manifest.schema).toBe(KEY_SCHEMA);
    expect(KEY_SCHEMA).toBe(3);
  });

  it('lists components in the fixed order, lockfiles sorted by path', async () => {
    const ws = makeTree({ ...BASE, 'yarn.lock': 'y\n', 'Cargo.lock': 'c\n' });
    const key = await computeKey(inputs(ws, { config: 'x: 1' }));
    expect(key.manifest.components.map((c) => c.name)).toEqual([
      'salt',
      'name',
      'version',
      'platform',
      'variant',
      'paths',
      'config',
      'lockfile:Cargo.lock',
      'lockfile:package-lock.json',
      'lockfile:yarn.lock',
      'sources',
    ]);
    expect(component(key, 'salt')?.value).toBe('clyde-key-v3');
    expect(component(key, 'variant')?.value).toBe('release');
    // 7 files, 3 of them lockfiles (components of their own).
    expect(component(key, 'sources')?.fileCount).toBe(4);
  });

  it('hashes the documented canonical forms', async () => {
    const ws = makeTree({ 'B.c': 'upper', 'a.c': 'lower', '_x.c': 'underscore' });
    const key = await computeKey(inputs(ws));
    // Byte order: 'B' (0x42) < '_' (0x5f) < 'a' (0x61); a locale sort would differ.
    expect(Object.keys(key.manifest.files)).toEqual(['B.c', '_x.c', 'a.c']);
    const lines = ['B.c', '_x.c', 'a.c']
      .map((p) => `${p}\0${key.manifest.files[p] as string}\n`)
      .join('');
    expect(key.manifest.files['a.c']).toBe(blob('lower'));
    expect(component(key, 'sources')?.hash).toBe(hex(`sha1\n${lines}`));
    const canonical = JSON.stringify({
      schema: 3,
      components: key.manifest.components.map((c) => [c.kind, c.name, c.hash]),
    });
    expect(key.hash).toBe(hex(canonical));
    expect(hashManifest(key.manifest)).toBe(key.hash);
    // Same trees in another order of creation give the same manifest order.
    const other = makeTree({ '_x.c': 'underscore', 'a.c': 'lower', 'B.c': 'upper' });
    expect((await computeKey(inputs(other))).key).toBe(key.key);
  });

  it('gives a workspace with no files at all a key', async () => {
    const ws = tempDir();
    const key = await computeKey(inputs(ws));
    expect(component(key, 'sources')?.fileCount).toBe(0);
    expect(key.manifest.files).toEqual({});
  });

  it('works on a workspace given with a trailing separator or relative segments', async () => {
    const ws = makeTree(BASE);
    const plain = await computeKey(inputs(ws));
    const odd = await computeKey(inputs(path.join(ws, 'src', '..') + path.sep));
    expect(odd.key).toBe(plain.key);
  });

  it('is unaffected by copying the tree (the copy has new inodes and times)', async () => {
    const ws = makeTree(BASE);
    const copy = path.join(tempDir(), 'copy');
    cpSync(ws, copy, { recursive: true });
    writeFileSync(path.join(copy, 'src/main.c'), BASE['src/main.c'] as string);
    expect((await computeKey(inputs(copy))).key).toBe((await computeKey(inputs(ws))).key);
  });
});

describe('sanitizeKeyPart', () => {
  it.each([
    ['owner/repo', 'owner_repo'],
    ['My.Lib_2', 'My.Lib_2'],
    ['linux-x64', 'linux_x64'],
    ['a b,c', 'a_b_c'],
    ['', '_'],
    ['é', '_'],
    ['😀x', '_x'],
    ['x'.repeat(300), 'x'.repeat(100)],
  ])('%j -> %j', (input, expected) => {
    expect(sanitizeKeyPart(input)).toBe(expected);
  });
});

describe('logKey', () => {
  it('prints every component inside one group', async () => {
    const ws = makeTree(BASE);
    const key = await computeKey(inputs(ws, { config: CONFIG }));
    const out = await captureStdout(() => logKey(key));
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe(`::group::Cache key ${key.key}`);
    expect(lines.at(-1)).toBe('::endgroup::');
    for (const c of key.manifest.components) {
      expect(
        lines.some((l) => l.includes(c.name) && l.includes(c.hash) && l.includes(c.kind)),
      ).toBe(true);
    }
    expect(out).toContain('"release"');
    expect(out).toContain('4 files');
  });
});
