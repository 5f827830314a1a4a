import { afterEach, describe, expect, it } from '@jest/globals';
import yarnLockfile from '@yarnpkg/lockfile';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isInputError } from '../../src/errors.js';
import { computeKey, LOCKFILE_NAMES, type CacheKey } from '../../src/key/index.js';
import { parserFor } from '../../src/key/lockfile-formats.js';
import { REPO } from '../../test-support/world.js';
import { cleanup, inputs, makeTree } from './helpers.js';

afterEach(cleanup);

const hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const lockfiles = (key: CacheKey) =>
  key.manifest.components.filter((c) => c.kind === 'lockfile').map((c) => [c.name, c.hash]);

describe('lockfiles', () => {
  it('lists the common names', () => {
    for (const name of [
      'package-lock.json',
      'yarn.lock',
      'pnpm-lock.yaml',
      'Cargo.lock',
      'go.sum',
    ]) {
      expect(LOCKFILE_NAMES).toContain(name);
    }
    expect(new Set(LOCKFILE_NAMES).size).toBe(LOCKFILE_NAMES.length);
  });

  it("'auto' detects lockfiles in the workspace root only", async () => {
    const ws = makeTree({
      'go.sum': 'g\n',
      'Cargo.lock': 'c\n',
      'sub/package-lock.json': '{}\n',
      'notalock.txt': 'n\n',
    });
    const key = await computeKey(inputs(ws, { lockfiles: 'auto' }));
    expect(lockfiles(key)).toEqual([
      ['lockfile:Cargo.lock', hex('c\n')],
      ['lockfile:go.sum', hex('g\n')],
    ]);
  });

  it('hashes a CRLF checkout like the LF one, but keeps binary lockfiles as they are', async () => {
    const lf = makeTree({ 'yarn.lock': 'a\nb\n', 'bun.lockb': Buffer.from([0, 13, 10, 1]) });
    const crlf = makeTree({ 'yarn.lock': 'a\r\nb\r\n', 'bun.lockb': Buffer.from([0, 10, 1]) });
    const [kl, kc] = [await computeKey(inputs(lf)), await computeKey(inputs(crlf))];
    const [bl, yl] = lockfiles(kl);
    const [bc, yc] = lockfiles(kc);
    expect(bl?.[0]).toBe('lockfile:bun.lockb');
    expect(yl?.[0]).toBe('lockfile:yarn.lock');
    expect(yc).toEqual(yl);
    expect(bc?.[1]).not.toBe(bl?.[1]);
    expect(bl?.[1]).toBe(hex(Buffer.from([0, 13, 10, 1])));
  });

  it('takes an explicit list in any order, relative to the workspace', async () => {
    const ws = makeTree({ 'deps/a.lock': 'a', 'b.lock': 'b', 'package-lock.json': '{}' });
    const one = await computeKey(inputs(ws, { lockfiles: ['deps/a.lock', 'b.lock'] }));
    const two = await computeKey(inputs(ws, { lockfiles: ['./b.lock', 'deps/a.lock', ''] }));
    expect(lockfiles(one)).toEqual([
      ['lockfile:b.lock', hex('b')],
      ['lockfile:deps/a.lock', hex('a')],
    ]);
    expect(two.key).toBe(one.key);
  });

  it('an empty explicit list means no lockfile components', async () => {
    const ws = makeTree({ 'package-lock.json': '{}' });
    expect(lockfiles(await computeKey(inputs(ws, { lockfiles: [] })))).toEqual([]);
  });

  it.each([[['missing.lock']], [['present.lock', 'deps/']], [['../outside.lock']]])(
    'throws InputError naming lockfiles for %j',
    async (list) => {
      const ws = makeTree({ 'present.lock': 'p', 'deps/x': 'x' });
      const err = await computeKey(inputs(ws, { lockfiles: list })).catch((e: unknown) => e);
      expect(isInputError(err)).toBe(true);
      expect((err as { input: string }).input).toBe('lockfiles');
      expect((err as Error).message).toContain(list.at(-1));
    },
  );
});

/** [file name, lockfile text, the same versions reformatted, one version changed, expected]. */
const FORMATS: [string, string, string, string, Record<string, string>][] = [
  [
    'package-lock.json',
    '{"lockfileVersion":3,"packages":{"":{"name":"r"},"node_modules/a":{"version":"1.0.0","integrity":"sha512-a"},"node_modules/b/node_modules/a":{"version":"2.0.0"}}}',
    '{\n  "packages": {\n    "node_modules/b/node_modules/a": { "version": "2.0.0" },\n    "node_modules/a": {"integrity": "sha512-a", "version": "1.0.0"}, "": {"name": "r"}\n  },\n  "lockfileVersion": 3\n}\n',
    '{"lockfileVersion":3,"packages":{"node_modules/a":{"version":"1.0.1","integrity":"sha512-a"},"node_modules/b/node_modules/a":{"version":"2.0.0"}}}',
    { a: '1.0.0, 2.0.0' },
  ],
  [
    'yarn.lock',
    '# yarn lockfile v1\n\n"@s/x@^1.0.0", "@s/x@^1.1.0":\n  version "1.2.0"\n  integrity sha512-x\n\ny@^2:\n  version "2.0.0"\n',
    'y@^2:\n  version "2.0.0"\n\n\n"@s/x@^1.1.0", "@s/x@^1.0.0":\n  integrity sha512-x\n  version "1.2.0"\n',
    '"@s/x@^1.0.0", "@s/x@^1.1.0":\n  version "1.3.0"\n  integrity sha512-x\n\ny@^2:\n  version "2.0.0"\n',
    { '@s/x': '1.2.0', y: '2.0.0' },
  ],
  [
    'yarn.lock',
    '__metadata:\n  version: 8\n\n"a@npm:^1.0.0":\n  version: 1.0.2\n  resolution: "a@npm:1.0.2"\n  checksum: abc\n',
    '"a@npm:^1.0.0": {version: 1.0.2, resolution: "a@npm:1.0.2", checksum: abc}\n__metadata: {version: 8}\n',
    '__metadata:\n  version: 8\n\n"a@npm:^1.0.0":\n  version: 1.0.3\n  resolution: "a@npm:1.0.3"\n  checksum: abc\n',
    { a: '1.0.2' },
  ],
  [
    'pnpm-lock.yaml',
    "lockfileVersion: '9.0'\npackages:\n  '@s/a@1.0.0':\n    resolution: {integrity: sha512-a}\n  b@2.0.0(react@18.0.0):\n    resolution: {integrity: sha512-b}\n",
    "packages:\n  b@2.0.0(react@18.0.0): {resolution: {integrity: sha512-b}}\n  '@s/a@1.0.0': {resolution: {integrity: sha512-a}}\nlockfileVersion: '9.0'\n",
    "lockfileVersion: '9.0'\npackages:\n  '@s/a@1.0.1':\n    resolution: {integrity: sha512-a}\n  b@2.0.0(react@18.0.0):\n    resolution: {integrity: sha512-b}\n",
    { '@s/a': '1.0.0', b: '2.0.0' },
  ],
  [
    'Cargo.lock',
    'version = 3\n\n[[package]]\nname = "libc"\nversion = "0.2.150"\nchecksum = "ab"\n\n[[package]]\nname = "me"\nversion = "0.1.0"\n',
    '[[package]]\nname = "me"\nversion = "0.1.0"\n[[package]]\nchecksum = "ab"\nname    = "libc"\nversion = "0.2.150"\n',
    'version = 3\n\n[[package]]\nname = "libc"\nversion = "0.2.151"\nchecksum = "ab"\n\n[[package]]\nname = "me"\nversion = "0.1.0"\n',
    { libc: '0.2.150', me: '0.1.0' },
  ],
  [
    'poetry.lock',
    '[[package]]\nname = "requests"\nversion = "2.31.0"\nfiles = [{file = "r.whl", hash = "sha256:1"}]\n',
    '[[package]]\nversion = "2.31.0"\nname = "requests"\nfiles = [\n  {hash = "sha256:1", file = "r.whl"},\n]\n',
    '[[package]]\nname = "requests"\nversion = "2.32.0"\nfiles = [{file = "r.whl", hash = "sha256:1"}]\n',
    { requests: '2.31.0' },
  ],
  [
    'uv.lock',
    'version = 1\n[[package]]\nname = "idna"\nversion = "3.6"\nsdist = { url = "u", hash = "sha256:2" }\n',
    '[[package]]\nname = "idna"\nsdist = { hash = "sha256:2", url = "u" }\nversion = "3.6"\n',
    'version = 1\n[[package]]\nname = "idna"\nversion = "3.7"\nsdist = { url = "u", hash = "sha256:2" }\n',
    { idna: '3.6' },
  ],
  [
    'composer.lock',
    '{"packages":[{"name":"monolog/monolog","version":"3.5.0","dist":{"shasum":"x"}}],"packages-dev":[]}',
    '{\n    "packages-dev": [],\n    "packages": [\n        {"version": "3.5.0", "name": "monolog/monolog", "dist": {"shasum": "x"}}\n    ]\n}',
    '{"packages":[{"name":"monolog/monolog","version":"3.6.0","dist":{"shasum":"x"}}],"packages-dev":[]}',
    { 'monolog/monolog': '3.5.0' },
  ],
  [
    'Pipfile.lock',
    '{"default":{"flask":{"version":"==3.0.0","hashes":["sha256:b","sha256:a"]}},"develop":{}}',
    '{"develop": {}, "default": {"flask": {"hashes": ["sha256:a", "sha256:b"], "version": "==3.0.0"}}}',
    '{"default":{"flask":{"version":"==3.0.1","hashes":["sha256:b","sha256:a"]}},"develop":{}}',
    { flask: '3.0.0' },
  ],
  [
    'packages.lock.json',
    '{"version":1,"dependencies":{"net8.0":{"Newtonsoft.Json":{"type":"Direct","resolved":"13.0.3","contentHash":"h"}}}}',
    '{\n  "dependencies": {"net8.0": {"Newtonsoft.Json": {"contentHash": "h", "resolved": "13.0.3", "type": "Direct"}}},\n  "version": 1\n}',
    '{"version":1,"dependencies":{"net8.0":{"Newtonsoft.Json":{"type":"Direct","resolved":"13.0.4","contentHash":"h"}}}}',
    { 'Newtonsoft.Json': '13.0.3' },
  ],
  [
    'go.sum',
    'golang.org/x/text v0.14.0 h1:a=\ngolang.org/x/text v0.14.0/go.mod h1:b=\n',
    'golang.org/x/text  v0.14.0/go.mod   h1:b=\r\n\r\ngolang.org/x/text\tv0.14.0 h1:a=\r\n',
    'golang.org/x/text v0.15.0 h1:a=\ngolang.org/x/text v0.15.0/go.mod h1:b=\n',
    { 'golang.org/x/text': 'v0.14.0, v0.14.0/go.mod' },
  ],
  [
    'gradle.lockfile',
    '# This is a Gradle generated file\ncom.google:guava:32.0.0-jre=compileClasspath\nempty=\n',
    'empty=\n\ncom.google:guava:32.0.0-jre = compileClasspath\n# comment\n',
    '# This is a Gradle generated file\ncom.google:guava:33.0.0-jre=compileClasspath\nempty=\n',
    { '(empty)': '', 'com.google:guava': '32.0.0-jre' },
  ],
];

describe('lockfiles read as resolved sets', () => {
  const lockOf = (name: string, text: string) =>
    computeKey(inputs(makeTree({ [name]: text, 'a.c': 'a' }), { lockfiles: [name] }));
  const hashOf = (key: CacheKey) =>
    key.manifest.components.find((c) => c.kind === 'lockfile')?.hash;

  it.each(FORMATS)('%s', async (name, text, reformatted, bumped, versions) => {
    const base = await lockOf(name, text);
    expect(base.manifest.dependencies).toEqual({ [name]: versions });
    expect(hashOf(base)).not.toBe(hex(text)); // not the bytes
    expect((await lockOf(name, reformatted)).key).toBe(base.key);
    expect(hashOf(await lockOf(name, bumped))).not.toBe(hashOf(base));
  });

  it('changes with an integrity hash, not only a version', async () => {
    const [name, text] = FORMATS[0] as (typeof FORMATS)[number];
    const base = await lockOf(name, text);
    expect(hashOf(await lockOf(name, text.replace('sha512-a', 'sha512-z')))).not.toBe(hashOf(base));
  });

  it.each([
    ['package-lock.json', '{"lockfileVersion": 3'],
    ['Cargo.lock', 'not = [toml'],
    ['go.sum', 'one-field-only\n'],
    ['yarn.lock', '<<<<<<< HEAD\na@1:\n  version "1"\n=======\n'],
  ])('falls back to the bytes for a %s it cannot read', async (name, text) => {
    const key = await lockOf(name, text);
    expect(hashOf(key)).toBe(hex(text));
    expect(key.manifest.dependencies).toBeUndefined();
  });
});

describe("yarn classic's lockfile, read as yarn reads it", () => {
  /** What yarn's own parser (a dev dependency, not bundled) resolves, in our terms. */
  const yarns = (text: string) => {
    const parsed = yarnLockfile.parse(text);
    if (parsed.type !== 'success') throw new Error(parsed.type);
    return Object.entries(
      parsed.object as Record<string, { version: string; integrity?: string }>,
    ).map(([spec, e]) => {
      const at = spec.indexOf('@', 1);
      return {
        name: at < 0 ? spec : spec.slice(0, at),
        version: e.version,
        integrity: e.integrity ?? '',
      };
    });
  };
  const ours = (text: string) => parserFor('yarn.lock')!.parse(text);

  it('agrees with yarn on a real yarn.lock (uri-js ships its own in its npm package)', async () => {
    const text = await fs.readFile(path.join(REPO, 'node_modules', 'uri-js', 'yarn.lock'), 'utf8');
    const theirs = yarns(text);
    expect(theirs.length).toBeGreaterThan(100);
    expect(ours(text)).toEqual(theirs);
    const crlf = text.replace(/\n/g, '\r\n');
    expect(ours(crlf)).toEqual(yarns(crlf));
  });

  it.each([
    ['several specs, quoted and bare', 'a@^1, a@~1.2, "a@>=1 <2":\n  version "1.2.3"\n'],
    [
      'escapes and a scope',
      '"@s/b@^2", "@s/b@2.x":\n  version "2.0.0"\n  integrity "sha1-\\"q\\""\n',
    ],
    [
      'dependency blocks and comments',
      '# yarn lockfile v1\n\nc@1:\n  version "1.0.0"\n  resolved "https://r/c-1.0.0.tgz#ab"\n  dependencies:\n    d "^2"\n  optionalDependencies:\n    e "3"\n\nd@^2:\n  version "2.1.0"\n  integrity sha512-Zz+/=\n',
    ],
  ])('agrees with yarn on %s', (_, text) => {
    expect(ours(text)).toEqual(yarns(text));
  });

  it.each([
    ['a merge conflict', '<<<<<<< HEAD\na@1:\n  version "1"\n=======\n'],
    ['a field outside a block', '  version "1"\n'],
    ['a block without a version', 'a@1:\n  resolved "x"\n'],
    ['a header without its colon', 'a@1\n  version "1"\n'],
  ])('refuses %s (the key then hashes the bytes)', (_, text) => {
    expect(() => ours(text)).toThrow();
  });
});
