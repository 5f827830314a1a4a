/**
 * A real npm workspaces project through dist/ as the runner runs it (issue 16 item 2): each job
 * is a fresh `git clone` in a directory of its own (so the workspace moves, as between runners),
 * `node_modules` is cached, and job 2 must get back a tree npm accepts: the workspace links
 * (`node_modules/ws-a -> ../packages/a`) leave the cached path but stay inside the workspace,
 * and must come back as links resolving into the new clone.
 *
 * The dependencies come from the npm registry (`npm install` once, to write package-lock.json;
 * `npm ci` in each job), with the npm cache in a temporary directory. Where the registry cannot
 * be reached the test is skipped, saying so, except on CI (CI set), where it fails.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { git, REPO } from '../../test-support/world.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Why the registry cannot be used here, or undefined when it can. */
function registryProblem(cache: string): string | undefined {
  const r = spawnSync(npm, ['view', 'ms@2.1.3', 'version'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, npm_config_cache: cache },
  });
  if (r.status === 0 && r.stdout.trim() === '2.1.3') return undefined;
  return `the npm registry cannot be reached (${(r.error?.message ?? r.stderr).trim().split('\n')[0]})`;
}

const probeCache = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-npm-probe-'));
const problem = registryProblem(probeCache);
await fs.rm(probeCache, { recursive: true, force: true });
const onCi = (process.env['CI'] ?? '') !== '';
/** Runs where the registry answers; fails on CI where it does not; else skipped, saying why. */
const withRegistry = problem === undefined || onCi ? describe : describe.skip;
const title = 'an npm workspaces project, each job a fresh clone';

const FILES: Record<string, string> = {
  'package.json': JSON.stringify(
    { name: 'ws-root', private: true, workspaces: ['packages/*'] },
    null,
    2,
  ),
  '.gitignore': 'node_modules/\n',
  'packages/a/package.json': JSON.stringify(
    {
      name: 'ws-a',
      version: '1.0.0',
      main: 'index.js',
      dependencies: { 'ws-b': '1.0.0', ms: '2.1.3' },
    },
    null,
    2,
  ),
  'packages/a/index.js': "module.exports = require('ws-b')(require('ms')('2h'));\n",
  'packages/b/package.json': JSON.stringify(
    { name: 'ws-b', version: '1.0.0', main: 'index.js', dependencies: { semver: '7.6.3' } },
    null,
    2,
  ),
  'packages/b/index.js': "module.exports = (n) => `${require('semver').valid('1.2.3')} ${n}`;\n",
};

let scratch = '';
let npmCache = '';

/**
 * npm with the test's own cache, as a `run:` step with `env` would run it, over this host's
 * environment (which a runner's steps inherit too: proxies, extra CA certificates).
 */
function runNpm(cwd: string, env: Record<string, string>, ...args: string[]) {
  return spawnSync(npm, [...args, '--no-audit', '--no-fund'], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    env: {
      ...process.env,
      ...env,
      npm_config_cache: npmCache,
      npm_config_update_notifier: 'false',
    },
  });
}

function warnings(r: StepResult): string[] {
  return r.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

withRegistry(`${title}${problem && !onCi ? ` (skipped: ${problem})` : ''}`, () => {
  let origin = '';
  let store = '';
  let service: CacheService | undefined;
  let clones = 0;

  beforeAll(async () => {
    if (problem !== undefined) throw new Error(`on CI, ${problem}`);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-npmws-'));
    npmCache = path.join(scratch, 'npm-cache');
    origin = path.join(scratch, 'origin');
    store = path.join(scratch, 'local-store');
    for (const [rel, text] of Object.entries(FILES)) {
      await fs.mkdir(path.dirname(path.join(origin, rel)), { recursive: true });
      await fs.writeFile(path.join(origin, rel), text);
    }
    // Once, to write the lockfile the jobs install from.
    const install = runNpm(origin, { ...process.env } as Record<string, string>, 'install');
    if (install.status !== 0) throw new Error(`npm install failed: ${install.stderr}`);
    await fs.rm(path.join(origin, 'node_modules'), { recursive: true });
    git(origin, 'init', '-q');
    git(origin, 'add', '-A');
    git(origin, 'commit', '-q', '-m', 'npm workspaces');
    service = await startCacheService({ dataDir: path.join(scratch, 'service') });
  });
  afterAll(async () => {
    await service?.close();
    if (scratch !== '') await fs.rm(scratch, { recursive: true, force: true });
  });

  /**
   * One job: a fresh clone, the action on node_modules, `npm ci` unless an exact hit, `then`
   * (a `run:` step), post. Returns the clone and the steps.
   */
  async function job(
    inputs: Record<string, string> = {},
    then?: (ws: string) => Promise<void>,
  ): Promise<{ ws: string; main: StepResult; posts: StepResult[]; installed: boolean }> {
    const ws = path.join(scratch, `clone-${++clones}`);
    git(scratch, 'clone', '-q', origin, ws);
    const j = new Job({ workspace: ws, env: (service as CacheService).env() });
    const main = await j.uses(REPO, {
      path: 'node_modules',
      name: 'npmws',
      'local-cache-dir': store,
      ...inputs,
    });
    let installed = false;
    await j.run('npm ci', async ({ env }) => {
      if (main.outputs['cache-hit'] === 'true') return;
      const ci = runNpm(ws, env, 'ci');
      if (ci.status !== 0) throw new Error(`npm ci failed: ${ci.stderr}`);
      installed = true;
      await then?.(ws);
    });
    return { ws, main, posts: await j.finish(), installed };
  }

  /** npm accepts the tree, the workspace package loads, and its links resolve into `ws`. */
  async function expectWorkingTree(ws: string): Promise<void> {
    const ls = runNpm(ws, { ...process.env } as Record<string, string>, 'ls');
    expect({ status: ls.status, out: ls.stdout + ls.stderr }).toMatchObject({ status: 0 });
    const loaded = spawnSync(process.execPath, ['-e', "console.log(require('ws-a'))"], {
      cwd: ws,
      encoding: 'utf8',
    });
    expect([loaded.status, loaded.stdout.trim()]).toEqual([0, '1.2.3 7200000']);
    for (const name of ['ws-a', 'ws-b']) {
      const link = path.join(ws, 'node_modules', name);
      expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
      const real = await fs.realpath(link);
      expect(real).toBe(await fs.realpath(path.join(ws, 'packages', name.slice(3))));
    }
  }

  let key = '';

  it('job 1 misses, runs npm ci and saves node_modules with its workspace links', async () => {
    const { main, posts, installed, ws } = await job();
    expect(main.exitCode).toBe(0);
    expect(main.outputs).toMatchObject({ 'cache-hit': 'false', tier: 'none' });
    key = main.outputs['cache-key'] ?? '';
    expect(installed).toBe(true);
    await expectWorkingTree(ws);
    const post = posts[0] as StepResult;
    expect(post.exitCode).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(service?.entries().map((e) => e.key)).toEqual([key]);
  });

  it('job 2, a fresh clone elsewhere, hits exactly and npm accepts the restored tree', async () => {
    const { main, installed, ws } = await job();
    expect(main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local', 'matched-key': key });
    expect(warnings(main)).toEqual([]);
    expect(installed).toBe(false);
    expect(await fs.readlink(path.join(ws, 'node_modules', 'ws-a'))).toBe(
      path.join('..', 'packages', 'a'),
    );
    await expectWorkingTree(ws);
  });

  it('job 3, with an empty local store, restores the same from the runner cache', async () => {
    await fs.rm(store, { recursive: true });
    const { main, installed, ws } = await job();
    expect(main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote', 'matched-key': key });
    expect(warnings(main)).toEqual([]);
    expect(installed).toBe(false);
    await expectWorkingTree(ws);
  });

  it('a link leaving the workspace is left out with a warning in the log and the summary', async () => {
    const outside = path.join(scratch, 'outside');
    await fs.mkdir(outside, { recursive: true });
    const first = await job({ variant: 'outside' }, async (ws) => {
      await fs.symlink(outside, path.join(ws, 'node_modules', '.outside'));
    });
    const post = first.posts[0] as StepResult;
    expect(warnings(post)).toEqual([
      expect.stringMatching(/not caching a symlink of node_modules pointing outside the workspace/),
    ]);
    expect(post.summary).toMatch(/node_modules\/\.outside -(>|&gt;) .*keep-outside-links: true/);
    const second = await job({ variant: 'outside' });
    expect(second.main.outputs).toMatchObject({ 'cache-hit': 'true' });
    await expect(fs.lstat(path.join(second.ws, 'node_modules', '.outside'))).rejects.toThrow();
    await expectWorkingTree(second.ws);
  });
});
