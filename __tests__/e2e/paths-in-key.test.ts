/**
 * Two steps with the same sources caching different paths (issue 16, item 1): each has its own
 * entry, as with actions/cache (whose cache version hashes the paths). Before the paths entered
 * the key, the second step reported an exact hit on the first one's entry and restored nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Job } from '../../test-support/runner.js';
import { createWorld, REPO, type World } from '../../test-support/world.js';

describe('two steps caching different paths', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  async function job(n: number) {
    const ws = path.join(world.root, `clone-${n}`);
    execFileSync('git', ['clone', '-q', world.workspace, ws]);
    const j = new Job({ workspace: ws, env: world.service.env() });
    const common = { name: 'demo', 'local-cache-dir': world.localStore };
    const build = await j.uses(REPO, { ...common, path: 'out' }, 'build-cache');
    const tools = await j.uses(REPO, { ...common, path: '.tool-cache' }, 'tool-cache');
    // As a workflow would: each step's work runs only when its cache missed.
    await j.run('build', () => {
      if (build.outputs['cache-hit'] !== 'true') {
        execFileSync('make', ['--no-print-directory'], { cwd: ws, stdio: 'ignore' });
      }
      if (tools.outputs['cache-hit'] !== 'true') {
        execFileSync('sh', ['-c', 'mkdir -p .tool-cache && echo tool > .tool-cache/tool.txt'], {
          cwd: ws,
        });
      }
    });
    const posts = await j.finish();
    return { ws, build, tools, posts };
  }

  it('keeps them apart: different keys, each restores its own path', async () => {
    const first = await job(1);
    expect(first.build.outputs['cache-key']).not.toBe(first.tools.outputs['cache-key']);
    expect(first.tools.outputs['cache-hit']).toBe('false');
    for (const p of first.posts) expect(p.summary).toMatch(/<td>saved<\/td>/);

    const second = await job(2);
    expect(second.build.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local' });
    expect(second.tools.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local' });
    expect(second.tools.outputs['matched-key']).toBe(first.tools.outputs['cache-key']);
    expect(await fs.readFile(path.join(second.ws, '.tool-cache', 'tool.txt'), 'utf8')).toBe(
      'tool\n',
    );
  });
});
