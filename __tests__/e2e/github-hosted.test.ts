/**
 * A runner whose disk goes with the job (RUNNER_ENVIRONMENT=github-hosted, or `local: false`):
 * nothing is written under the local store directory, a runner-cache hit is restored straight
 * from its download, and a damaged download at any point leaves the workspace as it was.
 * Through dist/, as the runner runs it, against the loopback cache service.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

const HOSTED = { RUNNER_ENVIRONMENT: 'github-hosted' };

/** Every file under `dir` by relative path: its sha256, or the target of a symlink. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, abs);
    if (e.isSymbolicLink()) out[rel] = `-> ${await fs.readlink(abs)}`;
    else if (e.isFile())
      out[rel] = createHash('sha256')
        .update(await fs.readFile(abs))
        .digest('hex');
  }
  return out;
}

function warnings(r: { annotations: { level: string; message: string }[] }): string[] {
  return r.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

describe('a GitHub-hosted runner: the runner cache alone', () => {
  let world: World;
  let built: Record<string, string>;
  let key = '';
  const out = (): string => path.join(world.workspace, 'out');

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('a cold job saves to the runner cache and writes nothing under the local store', async () => {
    const run = await runDemoJob(world, { env: HOSTED });
    expect(run.main.exitCode).toBe(0);
    expect(run.built).toBe(true);
    key = run.main.outputs['cache-key'] ?? '';
    const post = run.posts[0]!;
    expect(warnings(post)).toEqual([]);
    expect(post.stdout).toMatch(/Local store: off/);
    expect(world.service.entries().map((e) => e.key)).toEqual([key]);
    expect(await exists(world.localStore)).toBe(false);
    built = await tree(out());
  });

  it('a fresh runner restores the entry straight from its download, byte-identical', async () => {
    await fs.rm(out(), { recursive: true });
    const run = await runDemoJob(world, { env: HOSTED });
    expect(warnings(run.main)).toEqual([]);
    expect(run.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(run.built).toBe(false);
    expect(await tree(out())).toEqual(built);
    // make has nothing to do after an exact hit.
    expect(spawnSync('make', ['-q'], { cwd: world.workspace }).status).toBe(0);
    expect(await exists(world.localStore)).toBe(false);
    // Post has nothing to save and no store to prune: it opens none.
    const post = run.posts[0]!;
    expect(post.exitCode).toBe(0);
    expect(post.summary).toContain('Nothing to save: every package hit its key exactly.');
    expect(post.stdout).not.toMatch(/Local store: off/);
  });

  it('`local: false` on a self-hosted runner writes nothing under the local store either', async () => {
    await fs.rm(out(), { recursive: true });
    const run = await runDemoJob(world, { with: { local: 'false' } });
    expect(run.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(await tree(out())).toEqual(built);
    expect(await exists(world.localStore)).toBe(false);
  });

  it('`local: maybe` is an input error naming the accepted values', async () => {
    const run = await runDemoJob(world, { with: { local: 'maybe' }, targets: () => undefined });
    expect(run.main.exitCode).not.toBe(0);
    expect(run.main.annotations.map((a) => a.message).join('\n')).toMatch(
      /Input 'local': 'maybe' is not one of: auto, true, false/,
    );
  });

  it('a download damaged at any point is a warning and a miss; the workspace stays as it was', async () => {
    const entry = world.service.entries().find((e) => e.key === key)!;
    const good = world.service.readEntry(entry.id);
    // The header, the table, the first frame, the middle, the last frame, the end marker.
    const at = [9, 40, 300, Math.floor(good.length / 2), good.length - 60, good.length - 3];
    for (const pos of at) {
      const bad = Buffer.from(good);
      bad[pos] = (bad[pos] ?? 0) ^ 0x5a;
      world.service.reset();
      world.service.seedEntry({ key, version: entry.version, data: bad });
      await fs.rm(out(), { recursive: true, force: true });
      await fs.mkdir(out());
      await fs.writeFile(path.join(out(), 'mine.txt'), 'left alone\n');
      const run = await runDemoJob(world, {
        env: HOSTED,
        with: { save: 'never' },
        targets: () => undefined,
      });
      expect(run.main.exitCode).toBe(0);
      expect([pos, run.main.outputs['tier']]).toEqual([pos, 'none']);
      expect(warnings(run.main).join('\n')).toMatch(/Runner cache entry .* could not be restored/);
      expect(await tree(out())).toEqual({
        'mine.txt': createHash('sha256').update('left alone\n').digest('hex'),
      });
      expect((await fs.readdir(world.workspace)).filter((n) => n.startsWith('.clyde'))).toEqual([]);
    }
    // A download cut short every time is a miss too.
    world.service.reset();
    world.service.seedEntry({ key, version: entry.version, data: good });
    world.service.setFaults({ download: { truncateAt: Math.floor(good.length / 3) } });
    await fs.rm(out(), { recursive: true, force: true });
    const run = await runDemoJob(world, {
      env: HOSTED,
      with: { save: 'never' },
      targets: () => undefined,
    });
    expect(run.main.outputs['tier']).toBe('none');
    expect(await exists(out())).toBe(false);
  }, 300_000);
});

describe('incremental runner-cache saves: a layer over the entry restored', () => {
  let world: World;
  const out = (): string => path.join(world.workspace, 'out');
  let k1 = '';
  let k2 = '';
  let layerKey = '';
  let built: Record<string, string>;

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('after a fallback, post uploads only what the restored entry lacks', async () => {
    const first = await runDemoJob(world, { env: HOSTED });
    k1 = first.main.outputs['cache-key'] ?? '';
    const full = world.service.entries().find((e) => e.key === k1)!;
    const src = path.join(world.workspace, 'src');
    const file = (await fs.readdir(src)).filter((f) => f.endsWith('.c')).sort()[0]!;
    await fs.appendFile(path.join(src, file), '\n/* edited */\n');
    await fs.rm(out(), { recursive: true });

    const second = await runDemoJob(world, { env: HOSTED });
    expect(second.main.outputs).toMatchObject({ tier: 'remote', 'hit-kind': 'fallback' });
    expect(second.built).toBe(true);
    k2 = second.main.outputs['cache-key'] ?? '';
    expect(warnings(second.posts[0]!)).toEqual([]);
    layerKey = `${k2}-@layer-on-${k1}`;
    const layer = world.service.entries().find((e) => e.key === layerKey);
    expect(layer?.finalized).toBe(true);
    expect(layer!.sizeBytes).toBeLessThan(full.sizeBytes / 2);
    // Post built on the entry main restored (main's step store, kept for it, with the restored
    // files' stat cache): it read only the outputs the build rewrote.
    const packed = /Packed \S+ \((\d+) files, (\d+) read; /.exec(second.posts[0]!.stdout);
    expect(packed).not.toBeNull();
    expect(Number(packed![2])).toBeGreaterThan(0);
    expect(Number(packed![2])).toBeLessThan(Number(packed![1]) / 2);
    expect(await exists(world.localStore)).toBe(false);
    built = await tree(out());
  });

  it('a fresh runner restores the layer with its base, byte-identical; make has nothing to do', async () => {
    await fs.rm(out(), { recursive: true });
    const run = await runDemoJob(world, { env: HOSTED });
    expect(warnings(run.main)).toEqual([]);
    expect(run.main.outputs).toMatchObject({
      'cache-hit': 'true',
      tier: 'remote',
      'matched-key': k2,
    });
    expect(await tree(out())).toEqual(built);
    expect(spawnSync('make', ['-q'], { cwd: world.workspace }).status).toBe(0);
  });

  it('a self-hosted runner with an empty store restores the layer and keeps it, byte-identical', async () => {
    await fs.rm(out(), { recursive: true });
    const run = await runDemoJob(world);
    expect(warnings(run.main)).toEqual([]);
    expect(run.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(await tree(out())).toEqual(built);
    // Written through: the next job on this runner hits its local store.
    await fs.rm(out(), { recursive: true });
    const again = await runDemoJob(world);
    expect(again.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'local' });
    expect(await tree(out())).toEqual(built);
    await fs.rm(world.localStore, { recursive: true });
  });

  it('a layer whose base is gone is a warning and a miss, never a broken tree', async () => {
    const layer = world.service.entries().find((e) => e.key === layerKey)!;
    const data = world.service.readEntry(layer.id);
    world.service.reset();
    world.service.seedEntry({ key: layerKey, version: layer.version, data });
    await fs.rm(out(), { recursive: true });
    const run = await runDemoJob(world, {
      env: HOSTED,
      with: { save: 'never' },
      targets: () => undefined,
    });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(warnings(run.main).join('\n')).toMatch(
      /is a layer over .*, which the runner cache no longer holds/,
    );
    expect(await exists(out())).toBe(false);
  });
});

describe('a GitHub-hosted runner: a change too large for a layer', () => {
  let world: World;
  const out = (): string => path.join(world.workspace, 'out');

  beforeAll(async () => {
    world = await createWorld();
  });
  afterAll(async () => {
    await world.close();
  });

  it('saves a full entry, its unchanged blobs read in place from the restored pack; it restores byte-identical', async () => {
    const first = await runDemoJob(world, { env: HOSTED });
    const k1 = first.main.outputs['cache-key'] ?? '';
    const base = world.service.entries().find((e) => e.key === k1)!;
    const src = path.join(world.workspace, 'src');
    const file = (await fs.readdir(src)).filter((f) => f.endsWith('.c')).sort()[0]!;
    await fs.appendFile(path.join(src, file), '\n/* edited */\n');
    await fs.rm(out(), { recursive: true });

    // The build adds more new content than half the restored entry holds.
    const second = await runDemoJob(world, {
      env: HOSTED,
      targets: () => {
        writeFileSync(path.join(out(), 'big.bin'), randomBytes(base.sizeBytes + 4096));
        return [];
      },
    });
    expect(second.main.outputs).toMatchObject({ tier: 'remote', 'hit-kind': 'fallback' });
    expect(warnings(second.posts[0]!)).toEqual([]);
    const k2 = second.main.outputs['cache-key'] ?? '';
    const saved = world.service.entries().filter((e) => e.finalized && e.key.startsWith(k2));
    expect(saved.map((e) => e.key)).toEqual([k2]);
    expect(saved[0]!.sizeBytes).toBeGreaterThan(base.sizeBytes);
    const built = await tree(out());

    await fs.rm(out(), { recursive: true });
    const fresh = await runDemoJob(world, { env: HOSTED });
    expect(warnings(fresh.main)).toEqual([]);
    expect(fresh.main.outputs).toMatchObject({ 'cache-hit': 'true', 'matched-key': k2 });
    expect(await tree(out())).toEqual(built);
    expect(spawnSync('make', ['-q'], { cwd: world.workspace }).status).toBe(0);
  });
});
