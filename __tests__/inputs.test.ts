import { describe, expect, it } from '@jest/globals';
import * as path from 'node:path';
import {
  habitWarnings,
  homeDir,
  parseSources,
  readConfig,
  readJobStatus,
  type Host,
  type InputReader,
} from '../src/inputs.js';

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

  it('cross-os: false by default, a boolean (issue 12: cross-OS runner-cache entries)', () => {
    expect(readConfig('restore', reader({ path: 'out' }), env).crossOs).toBe(false);
    expect(readConfig('restore', reader({ path: 'out', 'cross-os': 'true' }), env).crossOs).toBe(
      true,
    );
    expect(() =>
      readConfig('restore', reader({ path: 'out', 'cross-os': 'windows' }), env),
    ).toThrow(/Input 'cross-os': 'windows' is not a boolean; use true or false/);
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

describe('cached paths that would revert the checkout', () => {
  it.each([
    ['..', { path: '..' }],
    ['~ with the workspace under home', { path: '~' }],
    ['a parent spelt with backslashes', { path: 'sub\\..\\..' }],
  ])('refuses %s: it contains the workspace', (_label, values) => {
    const underHome = { ...env, HOME: path.dirname(ws) };
    expect(() => readConfig('restore', reader(values), underHome)).toThrow(
      /Input 'path': .* contains the workspace.*list build outputs/,
    );
  });

  it.each(['.git', '.git/hooks', 'vendor/lib/.git', '.GIT\\modules'])(
    'refuses %s: it is or lies inside a .git directory',
    (p) => {
      expect(() => readConfig('restore', reader({ path: p }), env)).toThrow(
        /Input 'path': .* \.git directory.*list build outputs/,
      );
    },
  );

  // A guard for the refusals above (passes before the fix too): a name is not a way out.
  it('accepts outputs beside the workspace and names that only begin with ..', () => {
    const c = readConfig('restore', reader({ path: '..cache\n../sibling/out\n.github-out' }), env);
    expect(c.paths.map((p) => p.absPath)).toEqual([
      path.join(ws, '..cache'),
      path.join(path.dirname(ws), 'sibling', 'out'),
      path.join(ws, '.github-out'),
    ]);
  });
});

describe('path rules across operating systems', () => {
  it('reads backslashes as separators on Linux too', () => {
    const c = readConfig(
      'restore',
      reader({ path: 'build\\out\n~\\.cargo\\registry', 'local-cache-dir': '~\\store' }),
      env,
    );
    expect(c.paths).toEqual([
      { name: 'build/out', absPath: path.join(ws, 'build', 'out') },
      { name: '~/.cargo/registry', absPath: path.join('/home/u', '.cargo', 'registry') },
    ]);
    expect(c.localCacheDir).toBe(path.join('/home/u', 'store'));
  });

  const winWs = 'D:\\a\\widget\\widget';
  const winEnv = {
    GITHUB_WORKSPACE: winWs,
    // Git Bash and MSYS set HOME to a path Node cannot use; USERPROFILE is the home.
    HOME: '/c/Users/runneradmin',
    USERPROFILE: 'C:\\Users\\runneradmin',
    RUNNER_OS: 'Windows',
    RUNNER_ARCH: 'X64',
    GITHUB_REPOSITORY: 'octo/widget',
  };
  const windows: Host = { path: path.win32, platform: 'win32', homedir: () => 'C:\\Users\\os' };

  it('under Windows rules: ~\\ is USERPROFILE, / and \\ both separate, other drives allowed', () => {
    const c = readConfig(
      'restore',
      reader({
        path: '~\\.cargo\\registry\nbuild\\out\ntarget/release\n..cache\nE:\\cache\\tool',
        'local-cache-dir': '~/store',
      }),
      winEnv,
      windows,
    );
    expect(c.workspace).toBe(winWs);
    expect(c.paths).toEqual([
      { name: '~/.cargo/registry', absPath: 'C:\\Users\\runneradmin\\.cargo\\registry' },
      { name: 'build/out', absPath: 'D:\\a\\widget\\widget\\build\\out' },
      { name: 'target/release', absPath: 'D:\\a\\widget\\widget\\target\\release' },
      { name: '..cache', absPath: 'D:\\a\\widget\\widget\\..cache' },
      { name: 'E:/cache/tool', absPath: 'E:\\cache\\tool' },
    ]);
    expect(c.localCacheDir).toBe('C:\\Users\\runneradmin\\store');
    expect(c.platform).toBe('windows-x64');
  });

  it('under Windows rules: the home of the OS when the environment names none', () => {
    const c = readConfig(
      'restore',
      reader({ path: '~\\tool' }),
      { GITHUB_WORKSPACE: winWs },
      windows,
    );
    expect(c.paths[0]!.absPath).toBe('C:\\Users\\os\\tool');
  });

  it.each([
    ['..', /contains the workspace/],
    ['d:\\A\\WIDGET', /contains the workspace/], // drive letters and names fold case
    ['D:\\', /filesystem root/],
    ['.\\', /whole workspace/],
    ['sub\\.Git\\hooks', /\.git directory/],
    ['out\nOUT\\bin', /inside 'out'/],
  ])('under Windows rules refuses %s', (p, message) => {
    expect(() => readConfig('restore', reader({ path: p }), winEnv, windows)).toThrow(message);
  });

  it('homeDir: USERPROFILE first on Windows, HOME elsewhere', () => {
    const both = { HOME: '/home/u', USERPROFILE: 'C:\\Users\\u' };
    expect(homeDir(both, windows)).toBe('C:\\Users\\u');
    expect(homeDir({ HOME: '/home/u' }, windows)).toBe('/home/u');
    const linux: Host = { path: path.posix, platform: 'linux', homedir: () => '/root' };
    expect(homeDir(both, linux)).toBe('/home/u');
    expect(homeDir({ USERPROFILE: 'C:\\Users\\u' }, linux)).toBe('/root');
  });
});

describe('sources: none', () => {
  it.each([
    ['', []],
    ['src/**\n!src/gen/**', ['src/**', '!src/gen/**']],
    ['none', 'none'],
    ['  NONE  ', 'none'],
  ])('%j is %j', (raw, parsed) => {
    expect(parseSources(raw)).toEqual(parsed);
  });

  it("refuses 'none' among globs, naming the input", () => {
    expect(() => parseSources('none\nsrc/**')).toThrow(/Input 'sources'.*'none' alone/);
  });
});

describe('the job status post reads', () => {
  it.each([
    ['success', 'success'],
    ['failure', 'failure'],
    ['cancelled', 'cancelled'],
    ['', 'unknown'],
    ['${{ job.status }}', 'unknown'],
  ])('%j is %s', (raw, status) => {
    expect(readJobStatus(reader({ 'job-status': raw }))).toBe(status);
  });
});

describe('habits from actions/cache', () => {
  const config = (restoreKeys: readonly string[] | 'auto') => ({
    restoreKeys,
    name: 'mocha-deps',
    platform: 'linux-x64',
    variant: 'default',
  });

  it.each([
    ['clyde-mocha_deps-linux_x64-default-', undefined],
    ['clyde-mocha_deps-linux_x64-', undefined],
    ['clyde-mocha_deps-linux_x64-default-0a1b', undefined],
    ['clyde-', undefined],
    ['clyde-mocha-deps-linux-x64-default-', "Did you mean 'clyde-mocha_deps-linux_x64-default-'"],
    ['clyde-widget-linux-x64-default-', 'written'],
    ['clyde-a-b-c-not-hex', 'never match'],
    ['npm-linux-', 'actions/cache'],
  ])('restore key %s', (key, message) => {
    const out = habitWarnings('restore', config([key]), {});
    if (message === undefined) expect(out).toEqual([]);
    else expect(out.join('\n')).toContain(message);
  });

  it('names each actions/cache input given, not the ones left empty', () => {
    const out = habitWarnings('restore', config('auto'), {
      INPUT_KEY: 'npm-abc',
      'INPUT_SAVE-ALWAYS': 'true',
      INPUT_ENABLECROSSOSARCHIVE: 'true',
      'INPUT_UPLOAD-CHUNK-SIZE': '',
    });
    expect(out).toHaveLength(3);
    expect(out.join('\n')).toMatch(/'key'.*'save-always'.*'enableCrossOsArchive'/s);
    // The save sub-action has a `key` input of its own.
    expect(habitWarnings('save', config('auto'), { INPUT_KEY: 'clyde-x' })).toEqual([]);
  });
});
