/**
 * Bounded network work and honest save failures, end to end through dist/ against the loopback
 * service: a trickling download and an upload that is never answered end within `remote-timeout`
 * as warnings (the post's process exits), and a save the service refuses is one warning with
 * its reason and a line in the job summary.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Job, type StepResult } from '../../test-support/runner.js';
import { createWorld, demoInputs, REPO, runDemoJob, type World } from '../../test-support/world.js';

function annotations(r: StepResult, level: string): string[] {
  return r.annotations.filter((a) => a.level === level).map((a) => a.message);
}

/**
 * One world per describe block, with an empty service, local store and out/ before each test;
 * the returned function gives the current world.
 */
function freshWorldEachTest(): () => World {
  let world: World | undefined;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world?.close();
  });
  beforeEach(async () => {
    const w = world as World;
    w.service.reset();
    await fs.rm(w.localStore, { recursive: true, force: true });
    await fs.rm(path.join(w.workspace, 'out'), { recursive: true, force: true });
  });
  return () => world as World;
}

describe('network operations are bounded by remote-timeout', () => {
  const current = freshWorldEachTest();
  let world: World;
  beforeEach(() => {
    world = current();
  });

  it('a trickling download ends as a warning and a miss, the step succeeding', async () => {
    await runDemoJob(world); // populate the runner cache
    expect(world.service.entries().filter((e) => e.finalized)).toHaveLength(1);
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    // 20 bytes a second: it would take minutes, and never stalls long enough for an idle timer.
    world.service.setFaults({ download: { trickle: { bytes: 1, everyMs: 50 } } });

    const run = await runDemoJob(world, { with: { save: 'never', 'remote-timeout': '2s' } });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(annotations(run.main, 'warning').join('\n')).toMatch(
      /could not be restored: the download did not finish within 2 s \(the 'remote-timeout' input\)/,
    );
    expect(run.built).toBe(true);
    // Nothing of the broken download was kept.
    const store = await fs.readdir(world.localStore).catch(() => [] as string[]);
    expect(store.filter((d) => d === 'demo')).toEqual([]);
  });

  it('an upload that is never answered: post warns and its process exits', async () => {
    world.service.setFaults({ silentUpload: {} });
    const run = await runDemoJob(world, { with: { 'remote-timeout': '3s' } });
    expect(run.main.exitCode).toBe(0);
    const post = run.posts[0]!;
    expect(post.exitCode).toBe(0);
    expect(post.stderr).not.toMatch(/\[runner\] step killed/);
    const warned = annotations(post, 'warning');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(
      /runner cache failed: the upload did not finish within 3 s \(the 'remote-timeout' input\)/,
    );
    expect(post.summary).toMatch(
      /to the runner cache failed: the upload did not finish within 3 s/,
    );
    expect(world.service.entries().filter((e) => e.finalized)).toEqual([]);
    // The local tier still saved.
    expect(post.summary).toMatch(/Local store.*saved/s);
  });

  it('an abandoned upload leaves nothing of its own in RUNNER_TEMP', async () => {
    world.service.setFaults({ silentUpload: {} });
    const runnerTemp = await fs.mkdtemp(path.join(world.root, 'runner-temp-'));
    const job = new Job({ workspace: world.workspace, env: world.service.env(), runnerTemp });
    await job.uses(REPO, { ...demoInputs(world), 'remote-timeout': '2s' }, 'cache');
    await job.run('build', () => {
      execFileSync('make', ['--no-print-directory'], { cwd: world.workspace });
    });
    const [post] = await job.finish();
    expect(post!.exitCode).toBe(0);
    expect(annotations(post!, 'warning').join('\n')).toMatch(/the upload did not finish/);
    // The client's archive directory (a UUID, holding cache.tzst or cache.tgz) is gone.
    const left = await fs.readdir(runnerTemp);
    expect(left.filter((n) => /^[0-9a-f]{8}-/.test(n))).toEqual([]);
  });

  it("a bad 'remote-timeout' fails the step, naming the input and the accepted form", async () => {
    const run = await runDemoJob(world, { with: { 'remote-timeout': 'soon' } });
    expect(run.main.exitCode).not.toBe(0);
    expect(annotations(run.main, 'error').join('\n')).toMatch(
      /Input 'remote-timeout': 'soon' is not a duration; use a number with a unit/,
    );
    const zero = await runDemoJob(world, { with: { 'remote-timeout': '0' } });
    expect(annotations(zero.main, 'error').join('\n')).toMatch(
      /Input 'remote-timeout': '0' is not a time limit; use a duration above zero/,
    );
  });
});

describe('a failed save is one warning with its reason, and a summary line', () => {
  const current = freshWorldEachTest();
  let world: World;
  beforeEach(() => {
    world = current();
  });

  it('a reservation refused with 403: one warning with the service’s reason', async () => {
    world.service.setFaults({ twirp: { CreateCacheEntry: { status: 403 } } });
    const run = await runDemoJob(world);
    const post = run.posts[0]!;
    expect(post.exitCode).toBe(0);
    const warned = annotations(post, 'warning');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/runner cache failed: CreateCacheEntry answered HTTP 403/);
    expect(post.summary).toMatch(/to the runner cache failed: CreateCacheEntry answered HTTP 403/);
    expect(annotations(post, 'error')).toEqual([]);
  });

  it('a reservation refused with 409 (another job saved the key first) is no failure', async () => {
    world.service.setFaults({ twirp: { CreateCacheEntry: { status: 409 } } });
    const run = await runDemoJob(world);
    const post = run.posts[0]!;
    expect(post.exitCode).toBe(0);
    expect(annotations(post, 'warning')).toEqual([]);
    expect(post.stdout).toMatch(/Runner cache: already present /);
  });

  it('a finalize the service refuses (the client warns itself): still one warning', async () => {
    world.service.setFaults({ twirp: { FinalizeCacheEntryUpload: { status: 400 } } });
    const run = await runDemoJob(world);
    const post = run.posts[0]!;
    expect(post.exitCode).toBe(0);
    const warned = annotations(post, 'warning');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/runner cache failed: FinalizeCacheEntryUpload answered HTTP 400/);
    expect(post.summary).toMatch(/to the runner cache failed: .*FinalizeCacheEntryUpload/);
    expect(annotations(post, 'error')).toEqual([]);
  });
});
