/**
 * Poisoned runner-cache entries, and the bundle's fallback when the native zstd binding cannot
 * load. The entries are archives such as @actions/cache makes and would extract with `tar -P`,
 * planted under our key and version; clyde-cache reads its entries as packs only, so it must
 * refuse them all, write nothing outside the requested paths, and carry on as a miss.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { cacheVersion } from '../../src/remote/twirp.js';
import { copyOfAction, createWorld, runDemoJob, type World } from '../../test-support/world.js';

interface Member {
  name: string;
  type?: 'file' | 'symlink' | 'directory';
  data?: string;
  linkname?: string;
}

async function tarOf(members: Member[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const m of members) {
    const header = {
      name: m.name,
      type: m.type ?? 'file',
      mode: 0o644,
      ...(m.linkname ? { linkname: m.linkname } : {}),
    } as const;
    if ((m.type ?? 'file') === 'file') pack.entry(header, m.data ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  return zlib.zstdCompressSync(tar);
}

describe('poisoned runner-cache entries', () => {
  let world: World;
  let key = '';
  let sentinel = '';

  beforeAll(async () => {
    world = await createWorld();
    sentinel = path.join(world.root, 'sentinel');
    await fs.mkdir(sentinel);
    const probe = await runDemoJob(world, { with: { save: 'never' } });
    key = probe.main.outputs['cache-key'] ?? '';
    expect(key).not.toBe('');
  });
  afterAll(async () => {
    await world.close();
  });

  const climb = '../'.repeat(12);
  const cases: [string, () => Member[]][] = [
    [
      'a member climbing out with ..',
      () => [
        { name: `${climb}${sentinel.slice(1)}/evil.txt`, data: 'pwned' },
        { name: 'clyde.pack', data: 'x' },
      ],
    ],
    ['an absolute member', () => [{ name: `${sentinel}/evil.txt`, data: 'pwned' }]],
    [
      'a symlink named like the pack',
      () => [{ name: 'clyde.pack', type: 'symlink', linkname: sentinel }],
    ],
    [
      'the pack followed by a second member',
      () => [
        { name: 'clyde.pack', data: 'x' },
        { name: 'out/bin/demo', data: 'pwned' },
      ],
    ],
    [
      'a pack that is not a pack',
      () => [{ name: '../../_temp/clyde.pack', data: 'not a pack at all' }],
    ],
  ];

  it.each(cases)('%s is refused: a warning, a miss, nothing written', async (_label, members) => {
    world.service.reset();
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    world.service.seedEntry({
      key,
      version: cacheVersion(),
      scope: 'refs/heads/main',
      data: await tarOf(members()),
    });
    const run = await runDemoJob(world, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(run.main.annotations.map((a) => a.message).join('\n')).toMatch(
      /Runner cache entry .* could not be restored/,
    );
    expect(await fs.readdir(sentinel)).toEqual([]);
    // Only make's own outputs are in out/: nothing from the archive.
    await expect(fs.readFile(path.join(world.workspace, 'out', 'evil.txt'))).rejects.toThrow();
  });
});

describe('the bundle without its native zstd binding', () => {
  let world: World;
  let action = '';
  beforeAll(async () => {
    world = await createWorld();
    action = await copyOfAction(world);
    for (const entry of await fs.readdir(path.join(action, 'dist'))) {
      // A binary that cannot load here, as on musl or an old glibc.
      await fs.writeFile(
        path.join(action, 'dist', entry, 'build', 'Release', 'binding.node'),
        'not an ELF file',
      );
    }
  });
  afterAll(async () => {
    await world.close();
  });

  it('falls back to node:zlib and still saves and restores', async () => {
    const first = await runDemoJob(world, { action });
    expect(first.main.exitCode).toBe(0);
    expect(first.main.stdout).toMatch(/zstd: node:zlib/);
    expect(first.posts[0]!.summary).toMatch(/Local store.*saved/s);
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true });
    await fs.rm(world.localStore, { recursive: true });
    const second = await runDemoJob(world, { action });
    expect(second.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
    expect(second.built).toBe(false);
  });
});
