/**
 * Several packages in one workspace, through dist/ as the runner runs it: app depends on lib,
 * which depends on core (demo/workspace/.clyde/cache.yml). A change reaches every package that
 * depends on it and no other; the unchanged packages are restored and the changed ones are
 * reported for building; explain names what changed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StepResult } from '../../test-support/runner.js';
import { createWorld, DEMO_WORKSPACE, runDemoJob, type World } from '../../test-support/world.js';

interface PackageOutput {
  key: string;
  matchedKey: string;
  tier: string;
  hitKind: string;
  build: boolean;
}

interface Explained {
  files: { modified: { items: string[] } };
  config: { name: string; old?: string; new?: string }[];
  deps: { name: string }[];
}

function toBuild(main: StepResult): string[] {
  return JSON.parse(main.outputs['packages-to-build'] ?? '[]') as string[];
}

function packages(main: StepResult): Record<string, PackageOutput> {
  return JSON.parse(main.outputs['packages'] ?? '{}') as Record<string, PackageOutput>;
}

describe('a three-package workspace (app -> lib -> core)', () => {
  let world: World;
  let keys: Record<string, string> = {};
  const run = (): ReturnType<typeof runDemoJob> =>
    runDemoJob(world, {
      inputs: { 'local-cache-dir': world.localStore },
      targets: (main) => {
        const names = toBuild(main);
        return names.length > 0 ? names : undefined;
      },
    });

  beforeAll(async () => {
    world = await createWorld(DEMO_WORKSPACE);
  });
  afterAll(async () => {
    await world.close();
  });

  it('first job: every package misses, is built in dependency order and saved', async () => {
    const job = await run();
    expect(job.main.exitCode).toBe(0);
    expect(toBuild(job.main)).toEqual(['core', 'lib', 'app']);
    const p = packages(job.main);
    expect(Object.values(p).map((x) => x.tier)).toEqual(['none', 'none', 'none']);
    keys = Object.fromEntries(Object.entries(p).map(([n, x]) => [n, x.key]));
    expect(keys['core']).toMatch(/^clyde-core-linux_x64-default-[0-9a-f]{64}$/);
    expect(job.posts[0]!.exitCode).toBe(0);
    expect(
      world.service
        .entries()
        .map((e) => e.key)
        .sort(),
    ).toEqual(Object.values(keys).sort());
    expect(
      execFileSync(path.join(world.workspace, 'app', 'dist', 'app'), { encoding: 'utf8' }),
    ).toMatch(/^fingerprint [0-9a-f]{8}/);
  });

  it('a wiped workspace restores all three; nothing to build', async () => {
    for (const out of ['core/build', 'lib/build', 'app/dist']) {
      await fs.rm(path.join(world.workspace, out), { recursive: true });
    }
    const job = await run();
    expect(job.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local' });
    expect(toBuild(job.main)).toEqual([]);
    expect(job.built).toBe(false);
    expect(
      execFileSync(path.join(world.workspace, 'app', 'dist', 'app'), { encoding: 'utf8' }),
    ).toMatch(/^fingerprint/);
  });

  it('editing app changes only app: core and lib are restored, app is rebuilt alone', async () => {
    await fs.appendFile(path.join(world.workspace, 'app', 'src', 'main.c'), '\n/* app edit */\n');
    const job = await run();
    const p = packages(job.main);
    expect(toBuild(job.main)).toEqual(['app']);
    expect(p['core']).toMatchObject({ key: keys['core'], hitKind: 'exact' });
    expect(p['lib']).toMatchObject({ key: keys['lib'], hitKind: 'exact' });
    expect(p['app']).toMatchObject({ hitKind: 'fallback', matchedKey: keys['app'] });
    expect(p['app']!.key).not.toBe(keys['app']);
    expect(job.buildLog).toContain('app/dist/app');
    expect(job.buildLog).not.toContain('core.c');
    const explained = JSON.parse(job.main.outputs['explain'] ?? '{}') as Record<string, Explained>;
    expect(explained['app']!.files.modified.items).toEqual(['app/src/main.c']);
    expect(Object.keys(explained)).toEqual(['app']);
  });

  it('changing a core flag changes all three keys, and explain names the flag', async () => {
    const file = path.join(world.workspace, '.clyde', 'cache.yml');
    await fs.writeFile(
      file,
      (await fs.readFile(file, 'utf8')).replace('cflags: -O2', 'cflags: -O3'),
    );
    const before = packages((await run()).main);
    expect(Object.values(before).every((x) => x.hitKind === 'fallback')).toBe(true);
    // That job rebuilt and saved everything; now edit core's source.
    await fs.appendFile(path.join(world.workspace, 'core', 'src', 'core.c'), '\n/* core edit */\n');
    const job = await run();
    expect(toBuild(job.main)).toEqual(['core', 'lib', 'app']);
    const explained = JSON.parse(job.main.outputs['explain'] ?? '{}') as Record<string, Explained>;
    expect(explained['core']!.files.modified.items).toEqual(['core/src/core.c']);
    expect(explained['lib']!.deps.map((d) => d.name)).toEqual(['core']);
  });

  it('explain names the changed flag on a fallback', async () => {
    const file = path.join(world.workspace, '.clyde', 'cache.yml');
    await fs.writeFile(
      file,
      (await fs.readFile(file, 'utf8')).replace('cflags: -O3', 'cflags: -Os'),
    );
    const job = await run();
    const explained = JSON.parse(job.main.outputs['explain'] ?? '{}') as Record<string, Explained>;
    expect(explained['core']!.config).toEqual([{ name: 'cflags', old: '"-O3"', new: '"-Os"' }]);
    expect(job.main.stdout).toMatch(/Why core fell back/);
  });
});
