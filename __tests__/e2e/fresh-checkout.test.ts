/**
 * Incremental builds after a fresh checkout (issue 16 item 3), through dist/ as the runner runs
 * it, on real third-party C code: the zstd library shipped in node_modules/zstd-napi, built
 * whole (26 units at -O0, a few seconds) by a Makefile of ours (test-support/c-project.ts).
 * Every job is a fresh `git clone` with its own empty local store, as on a hosted runner, so
 * every source has the checkout's mtime and every hit comes through the runner-cache tier. Then
 * the same for a workspace file of three packages (demo/workspace: app -> lib -> core).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  builtBy,
  commitEdit,
  createWorkspaceRepo,
  createZstdRepo,
  freshClone,
  make,
  type Built,
} from '../../test-support/c-project.js';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { REPO } from '../../test-support/world.js';

interface JobRun {
  readonly main: StepResult;
  readonly workspace: string;
  /** `make -q` right after the cache step: 0 when make has nothing to do. */
  readonly upToDate: number | null;
  /** What the build step's `make` did. */
  readonly built: Built;
  /** Objects whose restored dependency files (.d) name `dependsOn`, sorted. */
  readonly dependents: string[];
}

describe('make after a fresh checkout, on the zstd library', () => {
  let root: string;
  let origin: string;
  let service: CacheService;
  let jobs = 0;
  let allObjects: string[] = [];

  /** One hosted-runner job: fresh clone, `earlier` step, the action, make, post. */
  async function runJob(
    opts: { earlier?: (workspace: string) => Promise<void>; dependsOn?: string } = {},
  ): Promise<JobRun> {
    const dir = path.join(root, `job-${++jobs}`);
    await fs.mkdir(dir);
    const workspace = path.join(dir, 'workspace');
    freshClone(origin, workspace);
    await opts.earlier?.(workspace);
    const job = new Job({
      workspace,
      env: { ...service.env(), RUNNER_ENVIRONMENT: 'github-hosted' },
    });
    const main = await job.uses(
      REPO,
      { path: 'build', name: 'zstd', 'local-cache-dir': path.join(dir, 'store') },
      'cache',
    );
    let upToDate: number | null = null;
    let dependents: string[] = [];
    let output = '';
    await job.run('build', async () => {
      if (opts.dependsOn) dependents = await objectsIncluding(workspace, opts.dependsOn);
      upToDate = spawnSync('make', ['-q'], { cwd: workspace }).status;
      output = make(workspace);
    });
    const posts = await job.finish();
    expect(main.exitCode).toBe(0);
    expect(main.annotations).toEqual([]);
    expect(job.status).toBe('success');
    expect(posts.map((p) => p.annotations)).toEqual([[]]);
    return { main, workspace, upToDate, built: builtBy(output), dependents };
  }

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-fresh-'));
    origin = path.join(root, 'origin');
    await createZstdRepo(origin);
    service = await startCacheService({ dataDir: path.join(root, 'service') });
  });
  afterAll(async () => {
    await service.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('job 1 misses, builds every unit and saves', async () => {
    const job = await runJob();
    expect(job.main.outputs).toMatchObject({ 'cache-hit': 'false', tier: 'none' });
    allObjects = job.built.objects;
    expect(allObjects.length).toBeGreaterThan(20);
    expect(allObjects).toContain('build/decompress/zstd_ddict.o');
    expect(job.built.archives).toEqual(['build/libzstd.a']);
    expect(service.entries()).toHaveLength(1);
  });

  it('job 2, a fresh clone: an exact hit leaves make nothing to do', async () => {
    const job = await runJob();
    expect(job.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(job.upToDate).toBe(0);
    expect(job.built).toEqual({ objects: [], archives: [] });
  });

  it('job 3, a fresh clone with one source edited: make rebuilds that unit and the archive', async () => {
    await commitEdit(origin, 'lib/decompress/zstd_ddict.c', '\n/* edited in job 3 */\n');
    const job = await runJob();
    expect(job.main.outputs).toMatchObject({ 'hit-kind': 'fallback', tier: 'remote' });
    expect(job.upToDate).not.toBe(0);
    expect(job.built).toEqual({
      objects: ['build/decompress/zstd_ddict.o'],
      archives: ['build/libzstd.a'],
    });
    expect(service.entries()).toHaveLength(2);
  });

  it('job 4: a header edited by an earlier step rebuilds exactly the units that include it', async () => {
    const header = 'lib/decompress/zstd_ddict.h';
    const job = await runJob({
      earlier: (ws) =>
        fs.appendFile(path.join(ws, header), '\n/* edited before the cache step */\n'),
      dependsOn: header,
    });
    // The fallback is job 3's entry: its edit of zstd_ddict.c is in this checkout too.
    expect(job.main.outputs).toMatchObject({ 'hit-kind': 'fallback', tier: 'remote' });
    expect(job.dependents.length).toBeGreaterThan(0);
    expect(job.dependents.length).toBeLessThan(allObjects.length);
    expect(job.built).toEqual({ objects: job.dependents, archives: ['build/libzstd.a'] });
  });
});

describe('make after a fresh checkout, on a workspace of three packages', () => {
  let root: string;
  let origin: string;
  let service: CacheService;
  let jobs = 0;

  /** One hosted-runner job on a fresh clone; what `make -q` and then `make` said. */
  async function runJob(): Promise<{ main: StepResult; upToDate: number | null; log: string }> {
    const dir = path.join(root, `job-${++jobs}`);
    await fs.mkdir(dir);
    const workspace = path.join(dir, 'workspace');
    freshClone(origin, workspace);
    const job = new Job({
      workspace,
      env: { ...service.env(), RUNNER_ENVIRONMENT: 'github-hosted' },
    });
    const main = await job.uses(REPO, { 'local-cache-dir': path.join(dir, 'store') }, 'cache');
    let upToDate: number | null = null;
    let log = '';
    await job.run('build', () => {
      upToDate = spawnSync('make', ['-q'], { cwd: workspace }).status;
      log = make(workspace);
    });
    const posts = await job.finish();
    expect(main.exitCode).toBe(0);
    expect(main.annotations).toEqual([]);
    expect(posts.map((p) => p.annotations)).toEqual([[]]);
    return { main, upToDate, log };
  }

  const hitKinds = (main: StepResult): Record<string, string> =>
    Object.fromEntries(
      Object.entries(
        JSON.parse(main.outputs['packages'] ?? '{}') as Record<string, { hitKind: string }>,
      ).map(([name, p]) => [name, p.hitKind]),
    );
  const steps = (log: string): string[] =>
    log
      .split('\n')
      .map((l) => l.trim().replace(/\s+/g, ' '))
      .filter((l) => /^(CC|LD) /.test(l));

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-fresh-ws-'));
    origin = path.join(root, 'origin');
    await createWorkspaceRepo(origin);
    service = await startCacheService({ dataDir: path.join(root, 'service') });
  });
  afterAll(async () => {
    await service.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('job 1 builds all three; job 2, a fresh clone, has nothing to do', async () => {
    const first = await runJob();
    expect(steps(first.log)).toHaveLength(3);
    const job = await runJob();
    expect(hitKinds(job.main)).toEqual({ core: 'exact', lib: 'exact', app: 'exact' });
    expect(job.upToDate).toBe(0);
    expect(steps(job.log)).toEqual([]);
  });

  it('an edit to app: core and lib exact, app falls back, and make relinks app alone', async () => {
    await commitEdit(origin, 'app/src/main.c', '\n/* app edit */\n');
    const job = await runJob();
    expect(hitKinds(job.main)).toEqual({ core: 'exact', lib: 'exact', app: 'fallback' });
    expect(steps(job.log)).toEqual(['LD app/dist/app']);
  });
});

/** Objects whose dependency file (`build/**.d`, as restored) names `header`. */
async function objectsIncluding(workspace: string, header: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await fs.readdir(path.join(workspace, 'build'), { recursive: true })) {
    if (!rel.endsWith('.d')) continue;
    const text = await fs.readFile(path.join(workspace, 'build', rel), 'utf8');
    const target = text.slice(0, text.indexOf(':'));
    if (text.split(/\s+/).includes(header)) out.push(target);
  }
  return out.sort();
}
