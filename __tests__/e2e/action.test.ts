/**
 * End to end: the bundled dist/ entrypoints, run as the runner runs them (test-support/runner),
 * against the loopback runner-cache service, on a real C project built with make.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

interface FileFacts {
  sha: string;
  mode: number;
  link?: string;
}

/** Every file, directory and symlink under `dir` with content hash, mode and link target. */
async function snapshot(dir: string): Promise<Record<string, FileFacts>> {
  const out: Record<string, FileFacts> = {};
  async function walk(rel: string): Promise<void> {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, e.name);
      const abs = path.join(dir, r);
      const st = await fs.lstat(abs);
      if (e.isSymbolicLink()) out[r] = { sha: '', mode: 0, link: await fs.readlink(abs) };
      else if (e.isDirectory()) {
        out[`${r}/`] = { sha: '', mode: st.mode & 0o777 };
        await walk(r);
      } else {
        out[r] = {
          sha: createHash('sha256')
            .update(await fs.readFile(abs))
            .digest('hex'),
          mode: st.mode & 0o777,
        };
      }
    }
  }
  await walk('');
  return out;
}

function warnings(r: { annotations: { level: string; message: string }[] }): string[] {
  return r.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

describe('the four demo jobs: miss, local hit, remote hit, fallback', () => {
  let world: World;
  let built: Record<string, FileFacts>;
  let firstKey = '';

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('job 1 misses, builds, and saves to both tiers', async () => {
    const run = await runDemoJob(world);
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs).toMatchObject({
      'cache-hit': 'false',
      tier: 'none',
      'matched-key': '',
    });
    firstKey = run.main.outputs['cache-key'] ?? '';
    expect(firstKey).toMatch(/^clyde-demo-linux_x64-default-[0-9a-f]{64}$/);
    expect(run.built).toBe(true);
    const post = run.posts[0]!;
    expect(post.skipped).toBe(false);
    expect(post.exitCode).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(post.summary).toContain('clyde-cache save');
    expect(world.service.entries().map((e) => e.key)).toEqual([firstKey]);
    const meta = JSON.parse(
      await fs.readFile(
        path.join(world.localStore, 'demo', 'unversioned', firstKey.slice(-64), 'meta.json'),
        'utf8',
      ),
    ) as { key: string };
    expect(meta.key).toBe(firstKey);
    built = await snapshot(path.join(world.workspace, 'out'));
    expect(built['bin/demo']?.mode).toBe(0o755);
    expect(built['bin/demo-current']?.link).toBe('demo');
  });

  it('job 2 on a wiped workspace hits the local store', async () => {
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    const run = await runDemoJob(world);
    expect(run.main.outputs).toMatchObject({
      'cache-hit': 'true',
      tier: 'local',
      'hit-kind': 'exact',
      'matched-key': firstKey,
    });
    expect(run.built).toBe(false);
    expect(await snapshot(path.join(world.workspace, 'out'))).toEqual(built);
    expect(run.posts[0]!.stdout).toContain('exact hit on');
    expect(run.main.summary).toContain('clyde-cache restore');
  });

  it('job 3 with an empty local store hits the runner cache and writes it through', async () => {
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    await fs.rm(world.localStore, { recursive: true });
    const run = await runDemoJob(world);
    expect(run.main.outputs).toMatchObject({
      'cache-hit': 'true',
      tier: 'remote',
      'matched-key': firstKey,
    });
    expect(warnings(run.main)).toEqual([]);
    expect(run.built).toBe(false);
    expect(await snapshot(path.join(world.workspace, 'out'))).toEqual(built);
    await expect(
      fs.stat(path.join(world.localStore, 'demo', 'unversioned', firstKey.slice(-64), 'meta.json')),
    ).resolves.toBeTruthy();
  });

  it('job 4 after a source edit falls back to the previous entry and saves a new one', async () => {
    const src = path.join(world.workspace, 'src');
    const file = (await fs.readdir(src)).filter((f) => f.endsWith('.c')).sort()[0]!;
    await fs.appendFile(path.join(src, file), '\n/* edited */\n');
    const run = await runDemoJob(world);
    expect(run.main.outputs).toMatchObject({
      'cache-hit': 'false',
      tier: 'local',
      'hit-kind': 'fallback',
      'matched-key': firstKey,
    });
    const newKey = run.main.outputs['cache-key'];
    expect(newKey).not.toBe(firstKey);
    expect(run.built).toBe(true);
    // The edited source was marked newer than the restored outputs, so make rebuilt its unit.
    expect(run.buildLog).toContain(file.replace(/\.c$/, ''));
    expect(
      world.service
        .entries()
        .map((e) => e.key)
        .sort(),
    ).toEqual([firstKey, newKey].sort());
  });
});

describe('cache problems become warnings, never failed steps', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  async function fresh(): Promise<void> {
    world.service.reset();
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
  }

  it('a service answering 503 gives a warning and a miss, and the save is skipped', async () => {
    await fresh();
    world.service.setFaults({ twirp: { '*': { status: 503 } } });
    const run = await runDemoJob(world);
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(warnings(run.main).join('\n')).toMatch(/Runner cache: lookup failed.*503/);
    expect(run.posts[0]!.exitCode).toBe(0);
    expect(world.service.entries()).toEqual([]);
    // The local tier still works.
    expect(run.posts[0]!.summary).toMatch(/Local store.*saved/s);
  });

  it('429 on lookup is a warning and a miss', async () => {
    await fresh();
    world.service.setFaults({ twirp: { GetCacheEntryDownloadURL: { status: 429 } } });
    const run = await runDemoJob(world, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(warnings(run.main).join('\n')).toMatch(/429/);
  });

  it('a failed blob upload ends in a skipped remote save, not a failed step', async () => {
    await fresh();
    world.service.setFaults({ blobPut: { status: 500 } });
    const run = await runDemoJob(world);
    expect(run.posts[0]!.exitCode).toBe(0);
    expect(world.service.entries().filter((e) => e.finalized)).toEqual([]);
    expect(run.posts[0]!.summary).toMatch(/Runner cache.*failed/s);
  });

  it('a truncated download is a warning and a miss, leaving nothing half-written', async () => {
    await fresh();
    await runDemoJob(world); // populate the runner cache
    expect(world.service.entries()).toHaveLength(1);
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    const size = world.service.entries()[0]!.sizeBytes;
    world.service.setFaults({ download: { truncateAt: Math.floor(size / 2) } });
    const run = await runDemoJob(world, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(warnings(run.main).join('\n')).toMatch(/could not be restored/);
    // The workspace got only what make built, nothing from the broken download.
    const store = await fs.readdir(world.localStore).catch(() => [] as string[]);
    expect(store.filter((d) => d === 'demo')).toEqual([]);
  });
});

describe('inputs and policies', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('a bad input fails the step with a message naming it', async () => {
    const run = await runDemoJob(world, { with: { save: 'sometimes' } });
    expect(run.main.exitCode).not.toBe(0);
    expect(
      run.main.annotations.some((a) => a.level === 'error' && /Input 'save'/.test(a.message)),
    ).toBe(true);
  });

  it.each([
    ['a glob that matches nothing', { sources: 'nothing/**' }, /Input 'sources'.*nothing\/\*\*/],
    ['a failing toolchain command', { toolchain: 'false' }, /Input 'toolchain'.*false/],
    ['a malformed workspace file', { path: '', packages: 'packages: [1, 2]' }, /Input 'packages'/],
    [
      'a dependency cycle',
      {
        path: '',
        packages:
          'packages:\n  a: { sources: [src/**], outputs: [out/a], depends: [b] }\n  b: { sources: [src/**], outputs: [out/b], depends: [a] }',
      },
      /Input 'packages'.*cycle/,
    ],
  ])('%s stops the step with a message naming it', async (_label, inputs, message) => {
    const run = await runDemoJob(world, { with: { ...inputs, save: 'never' } });
    expect(run.main.exitCode).not.toBe(0);
    const errors = run.main.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    expect(errors.join('\n')).toMatch(message);
  });

  it("save 'on-success' skips the post after a failed build; 'always' saves anyway", async () => {
    const failed = await runDemoJob(world, { failBuild: true });
    expect(failed.posts[0]!.skipped).toBe(true);
    const always = await runDemoJob(world, {
      failBuild: true,
      with: { save: 'always', path: 'include' },
    });
    expect(always.posts[0]!.skipped).toBe(false);
    expect(always.posts[0]!.summary).toMatch(/Local store.*saved/s);
  });

  it('fail-on-cache-miss fails the step on a miss; lookup-only restores nothing', async () => {
    const miss = await runDemoJob(world, {
      with: { 'fail-on-cache-miss': 'true', name: 'nothing-here', save: 'never' },
    });
    expect(miss.main.exitCode).not.toBe(0);
    await runDemoJob(world, { with: { name: 'lookup' } });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    const look = await runDemoJob(world, {
      with: { name: 'lookup', 'lookup-only': 'true', save: 'never' },
    });
    expect(look.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local' });
    // Nothing restored, so the build step ran? No: cache-hit was true, so it skipped make and out/ stays absent.
    await expect(fs.stat(path.join(world.workspace, 'out'))).rejects.toThrow();
  });
});
