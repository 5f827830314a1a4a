import { describe, expect, it } from '@jest/globals';
import * as path from 'node:path';
import { readConfig, type InputReader } from '../src/inputs.js';

const ws = path.resolve('/work/ws');
const env = {
  GITHUB_WORKSPACE: ws,
  HOME: '/home/u',
  RUNNER_OS: 'Linux',
  RUNNER_ARCH: 'X64',
  GITHUB_REPOSITORY: 'octo/widget',
};

function reader(values: Record<string, string>): InputReader {
  return (name) => values[name] ?? '';
}

describe('readConfig', () => {
  it('applies the documented defaults', () => {
    const c = readConfig('restore', reader({ path: 'out' }), env);
    expect(c).toMatchObject({
      workspace: ws,
      paths: [{ name: 'out', absPath: path.join(ws, 'out') }],
      sources: [],
      lockfiles: 'auto',
      name: 'widget',
      version: 'unversioned',
      variant: 'default',
      platform: 'linux-x64',
      restoreKeys: 'auto',
      localCacheDir: path.join('/home/u', '.clyde', 'cache'),
      remote: true,
      save: 'on-success',
      lookupOnly: false,
      failOnCacheMiss: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.paths)).toBe(true);
  });

  it('puts the local store under RUNNER_TOOL_CACHE when the runner sets it', () => {
    const c = readConfig('restore', reader({ path: 'out' }), {
      ...env,
      RUNNER_TOOL_CACHE: '/opt/hostedtoolcache',
    });
    expect(c.localCacheDir).toBe(path.join('/opt/hostedtoolcache', 'clyde-cache'));
  });

  it('parses lists, booleans, choices and the special words', () => {
    const c = readConfig(
      'restore',
      reader({
        path: 'out\n  ./build/ \n# comment\n~/.cache/tool',
        sources: 'src/**\n!src/gen/**',
        lockfiles: 'none',
        'restore-keys': 'none',
        remote: 'False',
        save: 'Always',
        'lookup-only': 'yes',
      }),
      env,
    );
    expect(c.paths.map((p) => p.name)).toEqual(['out', 'build', '~/.cache/tool']);
    expect(c.paths[2]!.absPath).toBe(path.join('/home/u', '.cache', 'tool'));
    expect(c.sources).toEqual(['src/**', '!src/gen/**']);
    expect(c.lockfiles).toEqual([]);
    expect(c.restoreKeys).toEqual([]);
    expect(c.remote).toBe(false);
    expect(c.save).toBe('always');
    expect(c.lookupOnly).toBe(true);
  });

  it('takes an explicit key only in the save step', () => {
    expect(readConfig('save', reader({ path: 'out', key: 'k-1' }), env).key).toBe('k-1');
    expect(readConfig('restore', reader({ path: 'out', key: 'k-1' }), env).key).toBeUndefined();
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['path missing', {}, /Input 'path': is required/],
    ['path glob', { path: 'out/**' }, /Input 'path'.*glob patterns/],
    ['path nested', { path: 'out\nout/bin' }, /Input 'path'.*inside 'out'/],
    ['path workspace', { path: '.' }, /Input 'path'.*whole workspace/],
    [
      'boolean',
      { path: 'out', remote: 'maybe' },
      /Input 'remote': 'maybe' is not a boolean; use true or false/,
    ],
    [
      'choice',
      { path: 'out', save: 'sometimes' },
      /Input 'save': 'sometimes' is not one of: on-success, always, never/,
    ],
    ['name', { path: 'out', name: 'my lib' }, /Input 'name': 'my lib' is not a valid name/],
    ['variant', { path: 'out', variant: '../x' }, /Input 'variant'/],
    ['restore key', { path: 'out', 'restore-keys': 'a,b' }, /Input 'restore-keys'.*no commas/],
    [
      'fail-on-cache-miss',
      { path: 'out', 'fail-on-cache-miss': 'y' },
      /Input 'fail-on-cache-miss'/,
    ],
  ];
  it.each(bad)('rejects a bad %s with a message naming the input', (_label, values, message) => {
    expect(() => readConfig('restore', reader(values), env)).toThrow(message);
  });
});
