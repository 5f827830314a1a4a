/**
 * Issue #3, "what it must show" 1: changing any one input of a build changes the key (and only
 * the component it belongs to); changing nothing, reformatting a lockfile or touching mtimes
 * does not. Run on a git checkout (the fast path) and on a plain directory.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { computeKey, type KeyInputs } from '../../src/key/index.js';
import {
  changedComponents,
  cleanup,
  component,
  inputs,
  makeRepo,
  makeTree,
  tempDir,
  writeTree,
  type Tree,
} from './helpers.js';

afterEach(cleanup);

const lock = (lodash: string, indent = 2) =>
  JSON.stringify(
    {
      name: 'app',
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', dependencies: { lodash: '^4' } },
        'node_modules/lodash': {
          version: lodash,
          resolved: `https://registry.npmjs.org/lodash/-/lodash-${lodash}.tgz`,
          integrity: `sha512-${lodash}`,
        },
        'node_modules/left-pad': { version: '1.3.0', integrity: 'sha512-lp' },
      },
    },
    null,
    indent,
  ) + '\n';

const TREE: Tree = {
  'src/main.c': '#include "util.h"\nint main(void) { return util(); }\n',
  'src/util.c': 'int util(void) { return 1; }\n',
  'include/util.h': 'int util(void);\n',
  Makefile: 'all:\n\tcc -Iinclude src/*.c\n',
  'package-lock.json': lock('4.17.20'),
};
const CONFIG = 'cflags: -O2\nldflags: [-lm]\n';

/** A "compiler" whose --version prints what is in a file next to it (outside the workspace). */
function makeTool(): { command: string; setVersion: (v: string) => void } {
  const dir = tempDir('clyde-tool-');
  const script = path.join(dir, 'cc.sh');
  writeFileSync(script, `#!/bin/sh\ncat "${path.join(dir, 'version')}"\n`);
  const setVersion = (v: string) => writeFileSync(path.join(dir, 'version'), `cc ${v}\r\nextra\n`);
  setVersion('12.2.0');
  return { command: `sh "${script}"`, setVersion };
}

type Row = {
  what: string;
  change: (ws: string, tool: ReturnType<typeof makeTool>) => Partial<KeyInputs> | undefined;
  /** Components that change; [] = the same key. */
  changed: string[];
};

const rows: Row[] = [
  { what: 'nothing', change: () => undefined, changed: [] },
  {
    what: 'touching every mtime',
    change: (ws) => {
      const later = new Date(Date.now() + 7_200_000);
      for (const rel of Object.keys(TREE)) utimesSync(path.join(ws, rel), later, later);
      return undefined;
    },
    changed: [],
  },
  {
    what: 'a source file',
    change: (ws) => void writeTree(ws, { 'src/util.c': 'int util(void) { return 2; }\n' }),
    changed: ['sources'],
  },
  {
    what: 'a header',
    change: (ws) => void writeTree(ws, { 'include/util.h': 'int util(void); /* v2 */\n' }),
    changed: ['sources'],
  },
  {
    what: 'a build script',
    change: (ws) => void writeTree(ws, { Makefile: 'all:\n\tcc -O3 -Iinclude src/*.c\n' }),
    changed: ['sources'],
  },
  { what: 'a flag', change: () => ({ config: CONFIG.replace('-O2', '-O3') }), changed: ['config'] },
  {
    what: 'an env variable value',
    change: () => ({ envValues: { CC: 'clang', CFLAGS: '-g' } }),
    changed: ['env:CC'],
  },
  {
    what: 'an env variable becoming unset',
    change: () => ({ envValues: { CC: 'gcc' } }),
    changed: ['env:CFLAGS'],
  },
  {
    what: 'a toolchain version',
    change: (_ws, tool) => {
      tool.setVersion('13.1.0');
      return undefined;
    },
    changed: ['toolchain:cc'],
  },
  {
    what: 'a dependency version in a lockfile',
    change: (ws) => void writeTree(ws, { 'package-lock.json': lock('4.17.21') }),
    changed: ['lockfile:package-lock.json'],
  },
  {
    what: 'reformatting the lockfile (same versions)',
    change: (ws) => void writeTree(ws, { 'package-lock.json': lock('4.17.20', 4) }),
    changed: [],
  },
  { what: 'the platform', change: () => ({ platform: 'macos-arm64' }), changed: ['platform'] },
  { what: 'the variant', change: () => ({ variant: 'debug' }), changed: ['variant'] },
];

describe.each([
  ['a git checkout', makeRepo],
  ['a plain directory', makeTree],
])('what changes the key, on %s', (_where, make) => {
  it.each(rows)('$what', async ({ change, changed }) => {
    const ws = make(TREE);
    const tool = makeTool();
    const base = (over: Partial<KeyInputs> = {}) =>
      inputs(ws, {
        config: CONFIG,
        env: ['CFLAGS', 'CC'],
        envValues: { CC: 'gcc', CFLAGS: '-g' },
        toolchain: [tool.command],
        ...over,
      });
    const before = await computeKey(base());
    const over = change(ws, tool) ?? {};
    const after = await computeKey(base(over));
    // Toolchain components are named by command; compare with the command shortened.
    const names = changedComponents(before, after).map((n) =>
      n === `toolchain:${tool.command}` ? 'toolchain:cc' : n,
    );
    expect(names.sort()).toEqual([...changed].sort());
    if (changed.length === 0) expect(after.key).toBe(before.key);
    else expect(after.key).not.toBe(before.key);
  });
});

describe('env and toolchain in the manifest', () => {
  it('records whether a variable is set, never its value', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const secret = 's3cr3t-value-1234';
    const key = await computeKey(
      inputs(ws, { env: ['TOKEN', 'MISSING'], envValues: { TOKEN: secret } }),
    );
    expect(component(key, 'env:TOKEN')?.value).toBe('set');
    expect(component(key, 'env:MISSING')?.value).toBe('unset');
    expect(JSON.stringify(key)).not.toContain(secret);
    // Set to the empty string is not the same as unset.
    const empty = await computeKey(inputs(ws, { env: ['MISSING'], envValues: { MISSING: '' } }));
    expect(component(empty, 'env:MISSING')?.hash).not.toBe(component(key, 'env:MISSING')?.hash);
  });

  it('reads process.env by default', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const name = `CLYDE_KEY_TEST_${process.pid}`;
    process.env[name] = 'one';
    try {
      const one = await computeKey(inputs(ws, { env: [name] }));
      process.env[name] = 'two';
      const two = await computeKey(inputs(ws, { env: [name] }));
      expect(changedComponents(one, two)).toEqual([`env:${name}`]);
    } finally {
      Reflect.deleteProperty(process.env, name);
    }
  });

  it('records the first line of a toolchain output, CRLF and surrounding space ignored', async () => {
    const ws = makeTree({ 'a.c': 'a' });
    const tool = makeTool();
    const key = await computeKey(inputs(ws, { toolchain: [tool.command] }));
    expect(component(key, `toolchain:${tool.command}`)?.value).toBe('cc 12.2.0');
    const lf = await computeKey(inputs(ws, { toolchain: [`printf '  cc 12.2.0\\nextra\\n\\n'`] }));
    expect(component(lf, `toolchain:printf '  cc 12.2.0\\nextra\\n\\n'`)?.hash).toBe(
      component(key, `toolchain:${tool.command}`)?.hash,
    );
  });
});
