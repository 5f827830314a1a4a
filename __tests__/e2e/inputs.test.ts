/**
 * Inputs that used to break a job, through dist/ as the runner runs it: cached paths that would
 * revert the checkout (issue 11, item 5) and inputs too large to hand to post in one state
 * variable (issue 11, item 6; the runner emulation enforces Linux's 128 KiB per variable).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ENV_STRING_LIMIT_BYTES, type StepResult } from '../../test-support/runner.js';
import { createWorld, DEMO_WORKSPACE, runDemoJob, type World } from '../../test-support/world.js';

function annotations(r: StepResult, level: 'error' | 'warning'): string[] {
  return r.annotations.filter((a) => a.level === level).map((a) => a.message);
}

describe('a cached path that contains the workspace', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  // For `~`, HOME is set above the workspace, as on a runner (/home/runner/work/<repo>/<repo>).
  it.each(['..', '~'])(
    'path: %s fails the main step with an input error naming path',
    async (p) => {
      const run = await runDemoJob(world, { with: { path: p }, env: { HOME: world.root } });
      expect(run.main.exitCode).not.toBe(0);
      expect(annotations(run.main, 'error')).toEqual([
        expect.stringMatching(/^Input 'path': '.*' \(.*\) contains the workspace/),
      ]);
      expect(run.built).toBe(false);
      expect(run.posts.every((post) => post.skipped)).toBe(true);
      expect(world.service.entries()).toEqual([]);
    },
  );
});

describe('inputs larger than one environment variable may be', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('a config input near the limit: main and post run, post saves', async () => {
    world = await createWorld();
    // JSON-like text: its quotes are escaped again in state, so state outgrows the input.
    const line = '"cflags": "-O2 -DNAME=\\"demo\\"",\n';
    const config = line.repeat(Math.floor((ENV_STRING_LIMIT_BYTES - 4096) / line.length));
    const run = await runDemoJob(world, { with: { config } });
    expect(run.main.exitCode).toBe(0);
    expect(run.built).toBe(true);
    const post = run.posts[0]!;
    expect(post.skipped).toBe(false);
    expect(post.exitCode).toBe(0);
    expect(annotations(post, 'error')).toEqual([]);
    expect(annotations(post, 'warning')).toEqual([]);
    expect(world.service.entries().map((e) => e.key)).toEqual([run.main.outputs['cache-key']]);
  });

  it('a 200 KB .clyde/cache.yml: main and post run, post saves every package', async () => {
    world = await createWorld(DEMO_WORKSPACE);
    const file = path.join(world.workspace, '.clyde', 'cache.yml');
    const comment = `# ${'a long note about the build, '.repeat(3)}\n`;
    await fs.appendFile(file, comment.repeat(Math.ceil((200 * 1024) / comment.length)));
    const run = await runDemoJob(world, {
      inputs: { 'local-cache-dir': world.localStore },
      targets: (main) => JSON.parse(main.outputs['packages-to-build'] ?? '[]') as string[],
    });
    expect(run.main.exitCode).toBe(0);
    const post = run.posts[0]!;
    expect(post.skipped).toBe(false);
    expect(post.exitCode).toBe(0);
    expect(annotations(post, 'error')).toEqual([]);
    expect(annotations(post, 'warning')).toEqual([]);
    expect(world.service.entries()).toHaveLength(3);
  });
});
