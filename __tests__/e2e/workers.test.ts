/**
 * The bundle's worker threads run from their own files beside each entry's index.js
 * (dist/<entry>/store-worker.js and hash-worker.js, scripts/bundle.ts), in a copy of dist/ with
 * no node_modules anywhere: when those files cannot run, the job still builds (a warning and no
 * save, never a failed step); when they can, the job saves and the next one restores.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createWorld, git, REPO, runDemoJob, type World } from '../../test-support/world.js';

/** Sources to hash: well above hashing.ts's WORKER_THRESHOLD (512). */
const GENERATED = 1200;

describe("the bundle's worker files", () => {
  let world: World;
  let action = '';
  beforeAll(async () => {
    world = await createWorld();
    action = path.join(world.root, 'action-copy');
    await fs.mkdir(action);
    await fs.copyFile(path.join(REPO, 'action.yml'), path.join(action, 'action.yml'));
    await fs.cp(path.join(REPO, 'dist'), path.join(action, 'dist'), { recursive: true });
    // Enough sources changed since git's index that the key's hashing starts its workers too.
    const gen = path.join(world.workspace, 'src', 'gen');
    await fs.mkdir(gen, { recursive: true });
    const header = (i: number) => path.join(gen, `g${i}.h`);
    for (let i = 0; i < GENERATED; i++) await fs.writeFile(header(i), `#define G${i} ${i}\n`);
    git(world.workspace, 'add', '-A');
    git(world.workspace, 'commit', '-q', '-m', 'generated headers');
    for (let i = 0; i < GENERATED; i++) await fs.appendFile(header(i), `#define H${i} ${i}\n`);
  });
  afterAll(async () => {
    await world.close();
  });

  /** Replaces the worker file `name` in every entry with one that throws as it starts. */
  async function breakWorker(name: string): Promise<() => Promise<void>> {
    const kept = new Map<string, Buffer>();
    for (const entry of await fs.readdir(path.join(action, 'dist'))) {
      const file = path.join(action, 'dist', entry, name);
      kept.set(file, await fs.readFile(file));
      await fs.writeFile(file, `throw new Error('${name} cannot start');\n`);
    }
    return async () => {
      for (const [file, content] of kept) await fs.writeFile(file, content);
    };
  }

  /** A job while `name` cannot start: it builds, with one warning naming it, and saves nothing. */
  async function jobWithout(name: string): Promise<void> {
    const repair = await breakWorker(name);
    const job = await runDemoJob(world, { action });
    await repair();
    expect(job.main.exitCode).toBe(0);
    expect(job.built).toBe(true);
    const post = job.posts[0]!;
    expect(post.exitCode).toBe(0);
    const warnings = [...job.main.annotations, ...post.annotations];
    expect(warnings).toEqual([
      { level: 'warning', message: expect.stringContaining(`${name} cannot start`) },
    ]);
    expect(post.summary).not.toMatch(/<td>saved/);
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
  }

  it('are what the bundle runs: broken, a warning and a build; intact, a save and a hit', async () => {
    await jobWithout('hash-worker.js');
    await jobWithout('store-worker.js');
    const first = await runDemoJob(world, { action });
    expect(first.main.exitCode).toBe(0);
    expect(first.posts[0]!.summary).toMatch(/<td>saved/);
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    await fs.rm(world.localStore, { recursive: true });
    const second = await runDemoJob(world, { action });
    expect(second.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(second.built).toBe(false);
  });
});
