/**
 * End to end, the traps a newcomer fell into (issue 16 items 4, 5, 6, 7, 9): the bundled dist/
 * run as the runner runs it, against the loopback runner-cache service, on the demo project.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { marked } from 'marked';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StepResult } from '../../test-support/runner.js';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

function warnings(r: StepResult): string[] {
  return r.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

async function editSource(world: World): Promise<void> {
  const src = path.join(world.workspace, 'src');
  const file = (await fs.readdir(src)).filter((f) => f.endsWith('.c')).sort()[0]!;
  await fs.appendFile(path.join(src, file), '\n/* edited */\n');
}

describe('save: always after a failed build (item 4)', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('saves the partial outputs where only a fallback finds them, so the rerun builds', async () => {
    // The build wrote some of its outputs, then failed.
    await fs.mkdir(path.join(world.workspace, 'out'), { recursive: true });
    await fs.writeFile(path.join(world.workspace, 'out', 'partial.o'), 'half a build\n');
    const failed = await runDemoJob(world, { failBuild: true, with: { save: 'always' } });
    const key = failed.main.outputs['cache-key']!;
    const post = failed.posts[0]!;
    expect(post.skipped).toBe(false);
    expect(post.exitCode).toBe(0);
    const saved = world.service.entries().map((e) => e.key);
    expect(saved).toHaveLength(1);
    expect(saved).not.toContain(key);
    expect(saved[0]!.startsWith(key.slice(0, -64))).toBe(true);
    expect(post.summary).toContain('fallback only');

    // The same commit again: not an exact hit, so the README's `if: cache-hit != 'true'` builds.
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    const rerun = await runDemoJob(world, { with: { save: 'always' } });
    expect(rerun.main.outputs['cache-key']).toBe(key);
    expect(rerun.main.outputs).toMatchObject({ 'cache-hit': 'false', 'hit-kind': 'fallback' });
    expect(rerun.main.outputs['matched-key']).toBe(saved[0]);
    expect(rerun.built).toBe(true);
    expect(world.service.entries().map((e) => e.key)).toContain(key);

    // Once a build succeeded, its entry is the exact hit.
    const third = await runDemoJob(world, { with: { save: 'always' } });
    expect(third.main.outputs).toMatchObject({ 'cache-hit': 'true', 'matched-key': key });
    expect(third.built).toBe(false);
  });

  it("a failed job's post saves nothing for a step whose save is on-success", async () => {
    world.service.reset();
    await fs.rm(world.localStore, { recursive: true, force: true });
    // Another clyde-cache step of the job has save: always, which lets every post run.
    const failed = await runDemoJob(world, {
      failBuild: true,
      env: { CLYDE_CACHE_SAVE_ON_FAILURE: 'true' },
      with: { path: 'include' },
    });
    expect(failed.posts[0]!.skipped).toBe(false);
    expect(failed.posts[0]!.stdout).toMatch(/Not saving: the job's status is failure/);
    expect(world.service.entries()).toEqual([]);
  });
});

describe('a dependency cache keyed on its lockfile (item 5)', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
    await fs.writeFile(
      path.join(world.workspace, 'package-lock.json'),
      JSON.stringify({
        name: 'demo',
        lockfileVersion: 3,
        packages: { '': { name: 'demo' }, 'node_modules/left-pad': { version: '1.3.0' } },
      }),
    );
    await fs.mkdir(path.join(world.workspace, 'deps'));
    await fs.writeFile(path.join(world.workspace, 'deps', 'left-pad.js'), 'module.exports = 1;\n');
  });
  afterAll(async () => {
    await world.close();
  });

  const deps = { path: 'deps', name: 'deps', sources: 'none' };

  it('keeps its key across a source edit and changes it with the lockfile', async () => {
    const first = await runDemoJob(world, { with: deps, targets: () => undefined });
    const key = first.main.outputs['cache-key']!;
    expect(first.posts[0]!.summary).toMatch(/saved/);

    await editSource(world);
    const edited = await runDemoJob(world, { with: deps, targets: () => undefined });
    expect(edited.main.outputs).toMatchObject({ 'cache-key': key, 'cache-hit': 'true' });
    // The same edit changes a key over the sources (the default), as it should for outputs.
    const outputs = await runDemoJob(world, { with: { save: 'never' }, targets: () => undefined });
    await editSource(world);
    const outputsEdited = await runDemoJob(world, {
      with: { save: 'never' },
      targets: () => undefined,
    });
    expect(outputsEdited.main.outputs['cache-key']).not.toBe(outputs.main.outputs['cache-key']);

    const lock = path.join(world.workspace, 'package-lock.json');
    const data = JSON.parse(await fs.readFile(lock, 'utf8')) as {
      packages: Record<string, { version?: string }>;
    };
    data.packages['node_modules/left-pad'] = { version: '1.3.1' };
    await fs.writeFile(lock, JSON.stringify(data));
    const bumped = await runDemoJob(world, { with: { ...deps, save: 'never' } });
    expect(bumped.main.outputs['cache-key']).not.toBe(key);
    expect(bumped.main.outputs['hit-kind']).toBe('fallback');
    expect(bumped.main.outputs['explain']).toContain('left-pad');
  });

  it("warns when 'sources: none' leaves the key nothing to depend on", async () => {
    await fs.rm(path.join(world.workspace, 'package-lock.json'));
    const run = await runDemoJob(world, { with: { ...deps, save: 'never' } });
    expect(warnings(run.main).join('\n')).toMatch(/depends on no file: 'sources' is none/);
  });
});

describe('key strings, logs and restore keys agree (item 6) and actions/cache habits (item 7)', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('the key-components log shows each part of the key as the key writes it', async () => {
    const run = await runDemoJob(world, {
      with: { name: 'mocha-deps', platform: 'ubuntu-22.04', save: 'never' },
      targets: () => undefined,
    });
    const key = run.main.outputs['cache-key']!;
    const [, name, platform, variant] = /^clyde-([^-]+)-([^-]+)-([^-]+)-[0-9a-f]{64}$/.exec(key)!;
    expect([name, platform, variant]).toEqual(['mocha_deps', 'ubuntu_22.04', 'default']);
    const line = (kind: string) =>
      run.main.stdout.split('\n').find((l) => l.startsWith(kind.padEnd(9))) ?? '';
    expect(line('name')).toContain(name!);
    expect(line('platform')).toContain(platform!);
    expect(run.main.stdout).toContain(`prefix ${key.slice(0, -64)}`);
  });

  it('a restore key written with the unsanitised parts is a warning that names the real prefix', async () => {
    const run = await runDemoJob(world, {
      with: {
        name: 'mocha-deps',
        platform: 'ubuntu-22.04',
        'restore-keys': 'clyde-mocha-deps-ubuntu-22.04-default-',
        save: 'never',
      },
      targets: () => undefined,
    });
    expect(warnings(run.main).join('\n')).toMatch(
      /restore-keys.*clyde-mocha-deps-ubuntu-22\.04-default-.*can never match.*Did you mean 'clyde-mocha_deps-ubuntu_22\.04-default-'/,
    );
  });

  it.each([
    ['key', 'npm-linux-0123abcd', /'key'.*computes the key itself.*sources: none/],
    ['save-always', 'true', /'save-always'.*save: always/],
    ['enableCrossOsArchive', 'true', /'enableCrossOsArchive'.*`platform`/],
    ['upload-chunk-size', '1048576', /'upload-chunk-size'.*no equivalent/],
    ['restore-keys', 'npm-linux-', /'restore-keys'.*'npm-linux-' can never match.*clyde-demo-/],
  ])(
    'the actions/cache input %s gets a warning naming the clyde-cache way',
    async (input, value, message) => {
      const run = await runDemoJob(world, {
        with: { [input]: value, save: 'never' },
        targets: () => undefined,
      });
      expect(run.main.exitCode).toBe(0);
      expect(warnings(run.main).join('\n')).toMatch(message);
    },
  );
});

describe('the job summary reads well in a browser (item 9)', () => {
  let world: World;
  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  async function html(step: StepResult): Promise<string> {
    return marked.parse(step.summary, { gfm: true, async: false });
  }

  /** The tables' visible text (tags and their attributes removed). */
  function tableTexts(rendered: string): string[] {
    return [...rendered.matchAll(/<table>[\s\S]*?<\/table>/g)].map((m) =>
      m[0].replace(/<[^>]*>/g, ' '),
    );
  }

  function expectReadable(rendered: string, keys: readonly string[]): void {
    expect(rendered).not.toContain('**');
    for (const t of rendered.match(/<table>[\s\S]*?<\/table>/g) ?? []) expect(t).toContain('<td');
    for (const text of tableTexts(rendered)) expect(text).not.toMatch(/[0-9a-f]{64}/);
    for (const k of keys) expect(rendered).toContain(k);
  }

  it('miss, exact hit and fallback render without markup leaking, empty tables or long keys', async () => {
    const first = await runDemoJob(world);
    const key = first.main.outputs['cache-key']!;
    const post1 = await html(first.posts[0]!);
    expectReadable(await html(first.main), [key]);
    expectReadable(post1, [key]);
    // Nothing was pruned: no prune section.
    expect(post1).not.toContain('clyde-cache prune');

    const hit = await runDemoJob(world);
    expect(hit.main.outputs['cache-hit']).toBe('true');
    const post2 = await html(hit.posts[0]!);
    expectReadable(post2, []);
    expect(post2).toContain('Nothing to save');

    await editSource(world);
    const fallback = await runDemoJob(world);
    expect(fallback.main.outputs['hit-kind']).toBe('fallback');
    const main3 = await html(fallback.main);
    expectReadable(main3, [fallback.main.outputs['cache-key']!, key]);
    // The explanation is rendered markdown: a bold lead and a list of what changed.
    expect(main3).toMatch(/<strong>Why the key changed:<\/strong>/);
    expect(main3).toMatch(/<li>(<p>)?files:/);
    expect(main3).not.toMatch(/<li>[^<]*- files/);
  });
});
