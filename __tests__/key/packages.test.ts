import { afterEach, describe, expect, it } from '@jest/globals';
import { isInputError } from '../../src/errors.js';
import {
  computePackageKeys,
  parseWorkspace,
  readWorkspaceFile,
  type PackageKey,
} from '../../src/key/index.js';
import { cleanup, component, makeRepo, makeTree, writeTree, type Tree } from './helpers.js';

afterEach(cleanup);

const WORKSPACE = `
packages:
  app: { sources: [app/**], outputs: [app/dist], depends: [lib] }
  lib: { sources: [lib/**], outputs: [lib/build], depends: [core] }
  core:
    sources: [core/**]
    outputs: [core/build]
    config: { cflags: -O2 }
    version: 1.0.0
    variant: release
    lockfiles: [core/Cargo.lock]
`;

const TREE: Tree = {
  '.clyde/cache.yml': WORKSPACE,
  'core/src/core.c': 'core\n',
  'core/Cargo.lock': '[[package]]\nname = "libc"\nversion = "0.2.150"\n',
  'core/build/core.o': 'output of core',
  'lib/lib.c': 'lib\n',
  'lib/build/lib.o': 'output of lib',
  'app/main.c': 'app\n',
  'app/dist/app': 'output of app',
};

const common = (workspace: string) => ({
  workspace,
  platform: 'linux-x64',
  defaults: { variant: 'default', version: '0', config: 'opt: 1' },
});

async function keys(ws: string): Promise<Record<string, string>> {
  const spec = await readWorkspaceFile(ws);
  if (spec === undefined) throw new Error('no workspace file');
  const list = await computePackageKeys(spec, common(ws));
  return Object.fromEntries(list.map((p) => [p.name, p.key.key]));
}

describe('computePackageKeys', () => {
  it.each([
    ['a git checkout', makeRepo],
    ['a plain directory', makeTree],
  ])('on %s: a change reaches every dependent package and no other', async (_w, make) => {
    const ws = make(TREE);
    const before = await keys(ws);

    writeTree(ws, { 'core/src/core.c': 'core, edited\n' });
    const coreEdited = await keys(ws);
    for (const name of ['core', 'lib', 'app']) expect(coreEdited[name]).not.toBe(before[name]);

    writeTree(ws, { 'app/main.c': 'app, edited\n' });
    const appEdited = await keys(ws);
    expect(appEdited['app']).not.toBe(coreEdited['app']);
    expect(appEdited['lib']).toBe(coreEdited['lib']);
    expect(appEdited['core']).toBe(coreEdited['core']);

    writeTree(ws, { 'lib/lib.c': 'lib, edited\n' });
    const libEdited = await keys(ws);
    expect(libEdited['core']).toBe(appEdited['core']);
    expect(libEdited['lib']).not.toBe(appEdited['lib']);
    expect(libEdited['app']).not.toBe(appEdited['app']);
  });

  it('returns packages in topological order with dep components and their own settings', async () => {
    const ws = makeTree(TREE);
    const spec = parseWorkspace(WORKSPACE, 'cache.yml');
    const list: PackageKey[] = await computePackageKeys(spec, common(ws));
    expect(list.map((p) => p.name)).toEqual(['core', 'lib', 'app']);
    const [core, lib, app] = list as [PackageKey, PackageKey, PackageKey];
    expect(component(lib.key, 'dep:core')?.hash).toBe(core.key.hash);
    expect(component(app.key, 'dep:lib')?.hash).toBe(lib.key.hash);
    expect(component(app.key, 'dep:core')).toBeUndefined(); // direct dependencies only
    expect(core.key.prefix).toBe('clyde-core-linux_x64-release-');
    expect(lib.key.prefix).toBe('clyde-lib-linux_x64-default-');
    expect(component(core.key, 'version')?.value).toBe('1.0.0');
    expect(core.key.manifest.config).toEqual({ cflags: '"-O2"' });
    expect(core.key.manifest.dependencies).toEqual({ 'core/Cargo.lock': { libc: '0.2.150' } });
    expect([core.version, core.variant, lib.version, lib.variant]).toEqual([
      '1.0.0',
      'release',
      '0',
      'default',
    ]);
    expect(lib.key.manifest.config).toEqual({ opt: '1' }); // the default config
    expect(app.outputs).toEqual(['app/dist']);
    expect(app.depends).toEqual(['lib']);
  });

  it("excludes every package's outputs and its lockfiles from each package's sources", async () => {
    const ws = makeTree({ ...TREE, 'core/nested-out/x': 'x' });
    const spec = parseWorkspace(
      `packages:
  core: { sources: ['core/**'], outputs: [core/build], lockfiles: [core/Cargo.lock] }
  inner: { sources: ['lib/**'], outputs: [core/nested-out] }`,
      'cache.yml',
    );
    const [core] = await computePackageKeys(spec, common(ws));
    expect(Object.keys(core?.key.manifest.files ?? {})).toEqual(['core/src/core.c']);
    const before = core?.key.key;
    writeTree(ws, { 'core/build/core.o': 'rebuilt', 'core/nested-out/x': 'y' });
    expect((await computePackageKeys(spec, common(ws)))[0]?.key.key).toBe(before);
  });

  it('names the package when its sources match nothing', async () => {
    const ws = makeTree(TREE);
    const spec = parseWorkspace('packages:\n  ghost: { sources: [ghost/**] }\n', 'cache.yml');
    const err = await computePackageKeys(spec, common(ws)).catch((e: unknown) => e);
    expect(isInputError(err)).toBe(true);
    expect((err as Error).message).toContain("package 'ghost'");
    expect((err as Error).message).toContain("'ghost/**'");
  });

  it('reads nothing when there is no workspace file', async () => {
    expect(await readWorkspaceFile(makeTree({ 'a.c': 'a' }))).toBeUndefined();
  });
});

describe('parseWorkspace rejects a malformed workspace file', () => {
  it.each([
    ['not YAML', 'packages: [unclosed', 'not valid YAML'],
    ['not a mapping', '- a\n- b\n', 'not a mapping'],
    ['an unknown top-level field', 'packages: {a: {sources: [a]}}\nextra: 1\n', "'extra'"],
    ['no packages', 'packages: {}\n', '`packages` must be a mapping'],
    ['an unknown field', 'packages:\n  a: { sources: [a], srcs: [b] }\n', "unknown field 'srcs'"],
    [
      'a bad name',
      'packages:\n  "-bad name": { sources: [a] }\n',
      "'-bad name' is not a package name",
    ],
    ['no sources', 'packages:\n  a: { outputs: [out] }\n', "package 'a' has no sources"],
    [
      'a bad sources type',
      'packages:\n  a: { sources: [1, {x: 1}] }\n',
      "'sources' must be a list",
    ],
    [
      'an unknown dependency',
      'packages:\n  a: { sources: [a], depends: [zed] }\n',
      "depends on 'zed', which is not declared",
    ],
    [
      'a dependency cycle',
      'packages:\n  a: { sources: [a], depends: [c] }\n  b: { sources: [b], depends: [a] }\n' +
        '  c: { sources: [c], depends: [b] }\n',
      'cycle: a -> c -> b -> a',
    ],
    ['a self-dependency', 'packages:\n  a: { sources: [a], depends: [a] }\n', 'depends on itself'],
    [
      'overlapping outputs',
      'packages:\n  a: { sources: [a], outputs: [out] }\n  b: { sources: [b], outputs: [out/b/] }\n',
      "the outputs of 'a' (out) and 'b' (out/b) overlap",
    ],
    [
      'an output outside the workspace',
      'packages:\n  a: { sources: [a], outputs: [../x] }\n',
      "output '../x' must be a path inside the workspace",
    ],
    [
      'duplicate packages',
      'packages:\n  a: { sources: [a] }\n  a: { sources: [b] }\n',
      'not valid YAML',
    ],
  ])('%s', (_what, text, message) => {
    let err: unknown;
    try {
      parseWorkspace(text, '.clyde/cache.yml');
    } catch (e) {
      err = e;
    }
    expect(isInputError(err)).toBe(true);
    expect((err as { input: string }).input).toBe('packages');
    expect((err as Error).message).toContain('.clyde/cache.yml');
    expect((err as Error).message).toContain(message);
  });

  it('accepts config as text, a single string for lists, and numbers as versions', () => {
    const spec = parseWorkspace(
      'packages:\n  a: { sources: a/**, config: "CFLAGS=-O2", version: 2 }\n',
      'input',
    );
    expect(spec.packages[0]).toEqual({
      name: 'a',
      sources: ['a/**'],
      outputs: [],
      depends: [],
      config: 'CFLAGS=-O2',
      version: '2',
      lockfiles: [],
    });
    expect(spec.source).toBe('input');
  });
});
