/**
 * Twenty-one jobs on one local store, seven at a time, through dist/ (issue 11, item 9): each a
 * fresh clone with its own edit (some edits shared, so some jobs save the same key at once),
 * restoring, building, saving and pruning with a tiny size budget on every post. Every save
 * either lands or says why in a warning, and every entry listed afterwards restores
 * byte-identically to what its job built.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { FAULTS_MODULE_ENV } from '../../src/run/common.js';
import {
  FAULTS_MODULE_FILE,
  PAUSE_AT_ENV,
  PAUSE_MARKER_ENV,
  RESUME_FILE_ENV,
} from '../../test-support/store/faults.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { createWorld, REPO, type World } from '../../test-support/world.js';

const JOBS = 21;
const AT_ONCE = 7;
const EDITS = 16;

/** Relative path -> sha256 (files) or '-> target' (symlinks), for every file under `dir`. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    const abs = path.join(dir, rel);
    const st = await fs.lstat(abs);
    if (st.isSymbolicLink()) out[rel] = `-> ${await fs.readlink(abs)}`;
    else if (st.isFile()) {
      out[rel] = createHash('sha256')
        .update(await fs.readFile(abs))
        .digest('hex');
    }
  }
  return out;
}

interface Ran {
  key: string;
  exactHit: boolean;
  built: Record<string, string>;
  post: StepResult;
}

describe('21 jobs on one local store', () => {
  let world: World;
  const store = () => path.join(world.root, 'shared-store');

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  async function job(i: number): Promise<Ran> {
    const ws = path.join(world.root, `job-${i}`);
    execFileSync('git', ['clone', '-q', world.workspace, ws]);
    await fs.appendFile(path.join(ws, 'src', 'words.c'), `/* edit ${i % EDITS} */\n`);
    const j = new Job({ workspace: ws, env: world.service.env() });
    const main = await j.uses(
      REPO,
      {
        path: 'out',
        name: 'demo',
        'local-cache-dir': store(),
        remote: 'false',
        'max-size': '30KB',
        'cleanup-interval': '0',
      },
      'cache',
    );
    expect(main.exitCode).toBe(0);
    let built: Record<string, string> = {};
    await j.run('build', () => {
      execFileSync('make', ['--no-print-directory'], { cwd: ws, stdio: 'ignore' });
    });
    built = await tree(path.join(ws, 'out'));
    const [post] = await j.finish();
    return {
      key: main.outputs['cache-key'] ?? '',
      exactHit: main.outputs['cache-hit'] === 'true',
      built,
      post: post as StepResult,
    };
  }

  it('every save lands or says why; every listed entry restores byte-identically', async () => {
    const ran: Ran[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        while (next < JOBS) ran.push(await job(next++));
      }),
    );
    expect(ran).toHaveLength(JOBS);
    expect(ran.filter((r) => !r.exactHit).length).toBeGreaterThanOrEqual(EDITS);
    for (const r of ran) {
      expect(r.post.exitCode).toBe(0);
      const warned = r.post.annotations.filter((a) => a.level === 'warning');
      // A concurrent prune never costs a save its content (it is rebuilt or saved again).
      expect(warned.map((a) => a.message).join('\n')).not.toMatch(/vanished/);
      // The save table's row for the key says what the local store did with it.
      // (The cell shows the key shortened; the full key is its title.)
      const row = r.post.summary.match(
        new RegExp(`<code title="${r.key}">[^<]*</code></td><td>([^<]*)</td>`),
      );
      const landed = row?.[1] === 'saved' || row?.[1] === 'already present';
      // After an exact hit there is nothing to save; otherwise the entry landed, or a warning
      // says why not.
      expect([r.key, r.exactHit || landed || warned.length > 0]).toEqual([r.key, true]);
    }

    const s = await LocalStore.open(store());
    const report = await s.verify({ deep: true });
    expect(report.problems).toEqual([]);
    const listed = (await s.list()).map((e) => e.key);
    expect(listed.length).toBeGreaterThan(0);
    for (const [n, key] of listed.entries()) {
      const dest = path.join(world.root, `check-${n}`, 'out');
      await s.restore(key, [{ name: 'out', absPath: dest }]);
      const built = ran.find((r) => r.key === key)?.built;
      expect([key, await tree(dest)]).toEqual([key, built]);
    }
  });

  it('a save whose reused content a concurrent gc deletes still lands, byte-identical', async () => {
    const gcStore = path.join(world.root, 'gc-store');
    const inputs = { path: 'out', name: 'demo', 'local-cache-dir': gcStore, remote: 'false' };
    const clone = async (n: string, edit: string): Promise<string> => {
      const ws = path.join(world.root, `gc-${n}`);
      execFileSync('git', ['clone', '-q', world.workspace, ws]);
      await fs.appendFile(path.join(ws, 'src', 'words.c'), `/* ${edit} */\n`);
      return ws;
    };
    const make = (ws: string) => () =>
      void execFileSync('make', ['--no-print-directory'], { cwd: ws, stdio: 'ignore' });

    // Job A saves; job B (one source edited) restores A as a fallback, builds, and its post
    // stops after writing its blobs, reusing A's stored groups for the unchanged outputs.
    const wsA = await clone('a', 'a');
    const a = new Job({ workspace: wsA, env: world.service.env() });
    await a.uses(REPO, inputs, 'cache');
    await a.run('build', make(wsA));
    await a.finish();
    const wsB = await clone('b', 'b');
    const marker = path.join(world.root, 'gc-paused');
    const resume = path.join(world.root, 'gc-resume');
    const b = new Job({
      workspace: wsB,
      env: {
        ...world.service.env(),
        [FAULTS_MODULE_ENV]: FAULTS_MODULE_FILE,
        [PAUSE_AT_ENV]: 'after-blobs',
        [PAUSE_MARKER_ENV]: marker,
        [RESUME_FILE_ENV]: resume,
      },
    });
    const mainB = await b.uses(REPO, inputs, 'cache');
    expect(mainB.outputs['hit-kind']).toBe('fallback');
    await b.run('build', make(wsB));
    const builtB = await tree(path.join(wsB, 'out'));
    const postB = b.finish();
    while (
      !(await fs.access(marker).then(
        () => true,
        () => false,
      ))
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Meanwhile a scheduled gc empties the store (a budget of one byte, no versions kept).
    const gc = new Job({ workspace: wsA });
    const g = await gc.uses(path.join(REPO, 'gc'), {
      local: 'true',
      remote: 'false',
      'local-cache-dir': gcStore,
      'max-size': '1B',
      'keep-versions': '0',
    });
    await gc.finish();
    expect(g.exitCode).toBe(0);
    expect(g.outputs['deleted-count']).toBe('1');
    await fs.writeFile(resume, '');
    const [post] = await postB;
    expect(post?.exitCode).toBe(0);
    expect(post?.annotations.filter((x) => x.level === 'warning')).toEqual([]);

    const s = await LocalStore.open(gcStore);
    const keyB = mainB.outputs['cache-key'] ?? '';
    expect((await s.list()).map((e) => e.key)).toEqual([keyB]);
    const dest = path.join(world.root, 'gc-check', 'out');
    await s.restore(keyB, [{ name: 'out', absPath: dest }]);
    expect(await tree(dest)).toEqual(builtB);
    expect((await s.verify({ deep: true })).problems).toEqual([]);
  });
});
