import { afterEach, describe, expect, it } from '@jest/globals';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { isInputError } from '../../src/errors.js';
import {
  asKeyManifest,
  changedSources,
  computeKey,
  explain,
  formatExplanation,
  type KeyInputs,
} from '../../src/key/index.js';
import { cleanup, inputs, makeRepo, makeTree, writeTree } from './helpers.js';

afterEach(cleanup);

const CONFIG = 'cflags: -O2\nlink:\n  lto: true\n  libs: [m]\n';
const lock = (lodash: string) =>
  JSON.stringify({
    lockfileVersion: 3,
    packages: {
      '': { name: 'x' },
      'node_modules/lodash': { version: lodash },
      'node_modules/gone': { version: '1.0.0' },
    },
  });

describe('explain', () => {
  it('names the changed file and the changed flag in a fallback case', async () => {
    const ws = makeRepo({ 'src/a.c': 'a\n', 'src/b.c': 'b\n', 'package-lock.json': lock('4.0.0') });
    const base: Partial<KeyInputs> = { config: CONFIG, env: ['CC'], envValues: { CC: 'gcc' } };
    const saved = await computeKey(inputs(ws, base));
    // The next run: one file edited, one added (untracked: globbed sources), one deleted, a
    // flag, a dependency, an env value.
    writeTree(ws, { 'src/a.c': 'a, edited\n', 'src/new.c': 'n\n' });
    rmSync(path.join(ws, 'src/b.c'));
    writeTree(ws, {
      'package-lock.json': JSON.stringify({
        lockfileVersion: 3,
        packages: {
          'node_modules/lodash': { version: '4.1.0' },
          'node_modules/new': { version: '2.0.0' },
        },
      }),
    });
    const now = await computeKey(
      inputs(ws, {
        ...base,
        sources: ['src/**'],
        config: CONFIG.replace('-O2', '-O3'),
        envValues: { CC: 'clang' },
      }),
    );
    expect(now.prefix).toBe(saved.prefix); // a fallback: same prefix, another hash
    const e = explain(saved.manifest, now.manifest);
    expect(e.compared).toBe(true);
    expect(e.changed).toBe(true);
    expect(e.files.modified).toEqual({ count: 1, items: ['src/a.c'] });
    expect(e.files.added).toEqual({ count: 1, items: ['src/new.c'] });
    expect(e.files.removed).toEqual({ count: 1, items: ['src/b.c'] });
    expect(e.config).toEqual([{ name: 'cflags', old: '"-O2"', new: '"-O3"' }]);
    expect(e.dependencies).toEqual([
      {
        lockfile: 'package-lock.json',
        added: [{ name: 'new', new: '2.0.0' }],
        removed: [{ name: 'gone', old: '1.0.0' }],
        changed: [{ name: 'lodash', old: '4.0.0', new: '4.1.0' }],
        more: 0,
      },
    ]);
    expect(e.env).toEqual(['CC']);
    expect(e.components.changed).toEqual(
      expect.arrayContaining(['config', 'env:CC', 'lockfile:package-lock.json', 'sources']),
    );
    const text = formatExplanation(e);
    expect(text).toContain('`src/a.c`');
    expect(text).toContain('cflags `"-O2"` -> `"-O3"`');
    expect(text).toContain('lodash 4.0.0 -> 4.1.0');
    expect(text).toContain('env values changed: CC');
    expect(text).not.toContain('clang'); // env values are never shown
    // Plain JSON, and a manifest read back from JSON explains the same.
    const back = asKeyManifest(JSON.parse(JSON.stringify(saved.manifest)));
    expect(back).toBeDefined();
    expect(JSON.parse(JSON.stringify(explain(back, now.manifest)))).toEqual(e);
  });

  it('names platform, variant, version and toolchain changes', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const a = await computeKey(inputs(ws, { toolchain: ['echo cc 1'] }));
    const b = await computeKey(
      inputs(ws, { toolchain: ['echo cc 2'], platform: 'win-x64', variant: 'debug', version: '2' }),
    );
    const e = explain(a.manifest, b.manifest);
    expect(e.fields).toEqual([
      { name: 'platform', old: 'linux-x64', new: 'win-x64' },
      { name: 'variant', old: 'release', new: 'debug' },
      { name: 'version', old: '1.0.0', new: '2' },
    ]);
    expect(e.toolchain).toEqual([
      { name: 'echo cc 1', old: 'cc 1' },
      { name: 'echo cc 2', new: 'cc 2' },
    ]);
    expect(e.files.modified.count).toBe(0);
    expect(formatExplanation(e)).toContain('- platform: `linux-x64` -> `win-x64`');
  });

  it('says when there is nothing to compare with, and when nothing changed', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const key = await computeKey(inputs(ws));
    const none = explain(undefined, key.manifest);
    expect(none.compared).toBe(false);
    expect(formatExplanation(none)).toContain('No previous entry to compare with');
    const same = explain(key.manifest, key.manifest);
    expect(same.changed).toBe(false);
    expect(formatExplanation(same)).toContain('nothing changed');
  });

  it('caps file lists but keeps the counts', async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 120; i++) tree[`f${String(i).padStart(3, '0')}`] = `${i}`;
    const a = await computeKey(inputs(makeTree(tree)));
    const b = await computeKey(
      inputs(makeTree(Object.fromEntries(Object.keys(tree).map((k) => [k, 'x'])))),
    );
    const e = explain(a.manifest, b.manifest);
    expect(e.files.modified.count).toBe(120);
    expect(e.files.modified.items).toHaveLength(50);
    expect(formatExplanation(e)).toContain('and 70 more');
  });

  it('does not diff files across key schemas', async () => {
    const key = await computeKey(inputs(makeTree({ 'a.c': 'a' })));
    const old = { ...key.manifest, schema: 1, files: { 'a.c': 'sha256-of-a' } };
    const e = explain(old, key.manifest);
    expect(e.schema).toEqual({ name: 'schema', old: '1', new: '3' });
    expect(e.files.modified.count).toBe(0);
  });

  it.each([[null], [{ schema: 2 }], [{ schema: 2, components: [{ name: 1 }], files: {} }]])(
    'asKeyManifest refuses %j',
    (raw) => {
      expect(asKeyManifest(raw)).toBeUndefined();
    },
  );
});

describe('toolchain failures are input errors naming the command', () => {
  it.each([
    ['a non-zero exit', 'sh -c "echo broken >&2; exit 3"', 'exited with code 3'],
    ['a missing command', 'clyde-no-such-compiler --version', 'command not found'],
    ['a timeout', 'sleep 5', 'did not finish within 0.2 s'],
  ])('%s', async (_what, command, message) => {
    const ws = makeTree({ 'a.c': 'a' });
    const err = await computeKey(
      inputs(ws, { toolchain: ['echo ok', command], toolchainTimeoutMs: 200 }),
    ).catch((e: unknown) => e);
    expect(isInputError(err)).toBe(true);
    expect((err as { input: string }).input).toBe('toolchain');
    expect((err as Error).message).toContain(`'${command}'`);
    expect((err as Error).message).toContain(message);
  });

  it('refuses an env entry that is not a variable name', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const err = await computeKey(inputs(ws, { env: ['CC', 'NOT-A-NAME'] })).catch(
      (e: unknown) => e,
    );
    expect(isInputError(err)).toBe(true);
    expect((err as { input: string }).input).toBe('env');
    expect((err as Error).message).toContain("'NOT-A-NAME'");
  });
});

describe('changedSources (what a restore marks newer than the outputs)', () => {
  const units = (n: number, text: string): Record<string, string> =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`src/u${i}.c`, `${text} ${i}\n`]));

  it('names every modified or added source and changed lockfile, never a removed one', async () => {
    const ws = makeRepo({
      ...units(60, 'v1'),
      'src/gone.c': 'g\n',
      'package-lock.json': lock('4.0.0'),
    });
    const saved = await computeKey(inputs(ws));
    writeTree(ws, { ...units(60, 'v2'), 'src/new.c': 'n\n', 'package-lock.json': lock('4.1.0') });
    rmSync(path.join(ws, 'src/gone.c'));
    const now = await computeKey(inputs(ws, { sources: ['**'] }));
    const c = changedSources(saved.manifest, now.manifest);
    expect(c.everything).toBeUndefined();
    // All of them, past explain's cap of 50, in byte order.
    expect(c.paths).toEqual(
      ['package-lock.json', 'src/new.c', ...Object.keys(units(60, ''))].sort(),
    );
  });

  it('names nothing when only the lockfile text changed, not what it resolves to', async () => {
    const ws = makeRepo({ 'src/a.c': 'a\n', 'package-lock.json': lock('4.0.0') });
    const saved = await computeKey(inputs(ws));
    writeTree(ws, { 'package-lock.json': `${lock('4.0.0')}\n\n` });
    const now = await computeKey(inputs(ws));
    expect(changedSources(saved.manifest, now.manifest)).toEqual({ paths: [] });
  });

  it('names every source when the entry differs in what no file shows', async () => {
    const ws = makeRepo({ 'src/a.c': 'a\n', 'src/b.c': 'b\n', 'package-lock.json': lock('4.0.0') });
    const all = ['package-lock.json', 'src/a.c', 'src/b.c'];
    const saved = await computeKey(inputs(ws, { env: ['CC'], envValues: { CC: 'gcc' } }));
    const cases: [Partial<KeyInputs>, string][] = [
      [{ env: ['CC'], envValues: { CC: 'clang' } }, 'env:CC changed'],
      [{ env: ['CC'], envValues: { CC: 'gcc' }, config: 'cflags: -O3' }, 'config changed'],
      [{ env: ['CC'], envValues: { CC: 'gcc' }, version: '2.0.0' }, 'version changed'],
    ];
    for (const [over, why] of cases) {
      const now = await computeKey(inputs(ws, over));
      expect(changedSources(saved.manifest, now.manifest)).toEqual({ paths: all, everything: why });
    }
    expect(changedSources(undefined, saved.manifest)).toEqual({
      paths: all,
      everything: 'the entry has no key manifest to compare with',
    });
    expect(
      changedSources({ ...saved.manifest, schema: saved.manifest.schema - 1 }, saved.manifest)
        .everything,
    ).toBe('the key schema changed');
  });
});
