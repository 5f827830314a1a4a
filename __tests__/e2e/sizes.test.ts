/**
 * Sizes an entry declares are untrusted (issue 11, items 3, 4 and 10), and honest sizes above
 * 2 GiB work: run through dist/ as the runner does, against the loopback cache service.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { cacheVersion } from '../../src/remote/twirp.js';
import { buildPack, packHeader, zerosFrame } from '../../test-support/sizes.js';
import { createWorld, REPO, runDemoJob, type World } from '../../test-support/world.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** What the restore step may take at its peak, whatever an entry declares. */
const RSS_BOUND = 512 * MiB;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: MiB }), hash);
  return hash.digest('hex');
}

function warnings(run: { annotations: { level: string; message: string }[] }): string {
  return run.annotations
    .filter((a) => a.level === 'warning')
    .map((a) => a.message)
    .join('\n');
}

describe('untrusted sizes in runner-cache entries', () => {
  let world: World;
  let key = '';
  let template: { meta: unknown; manifest: unknown };

  beforeAll(async () => {
    world = await createWorld();
    const first = await runDemoJob(world);
    key = first.main.outputs['cache-key'] ?? '';
    const entry = world.service.entries().find((e) => e.key === key);
    if (entry === undefined) throw new Error('the first run saved no runner-cache entry');
    template = packHeader(world.service.readEntry(entry.id));
  }, 300_000);
  afterAll(async () => {
    await world?.close();
  });

  /** The service holds `pack` under the demo's key; the runner's local store is empty. */
  async function serve(pack: Buffer): Promise<void> {
    world.service.reset();
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    world.service.seedEntry({ key, version: cacheVersion(), data: pack });
  }

  it.each(['native', 'node'])(
    'a zstd bomb (4 GiB declared, a 128 KiB frame of zeros) is a warning and a miss in bounded memory (%s backend)',
    async (backend) => {
      const size = 4 * GiB;
      // The frame really holds 4 GiB of zeros; the digest is not theirs.
      const digest = createHash('sha256').update('not four gigabytes of zeros').digest('hex');
      const root = (template.manifest as { roots: Record<string, unknown>[] }).roots[0];
      const manifest = {
        schema: 1,
        roots: [
          {
            ...root,
            entries: [{ path: 'bomb.bin', type: 'file', mode: 0o644, size, mtimeMs: 0, digest }],
          },
        ],
      };
      const pack = buildPack({ meta: template.meta, manifest }, [[digest, zerosFrame(size)]]);
      expect(pack.length).toBeLessThan(64 * 1024);
      await serve(pack);

      const rssDir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-rss-'));
      try {
        const preload = pathToFileURL(path.join(REPO, 'build', 'test-support', 'maxrss.js'));
        const run = await runDemoJob(world, {
          with: { save: 'never' },
          env: {
            NODE_OPTIONS: `--import=${preload.href}`,
            CLYDE_TEST_MAXRSS_DIR: rssDir,
            CLYDE_ZSTD_BACKEND: backend,
          },
        });
        expect(run.main.exitCode).toBe(0);
        expect(run.main.outputs['tier']).toBe('none');
        expect(warnings(run.main)).toMatch(
          /Runner cache entry .* could not be restored.*does not match its digest/s,
        );
        const peaks = await Promise.all(
          (await fs.readdir(rssDir)).map(async (f) =>
            Number(await fs.readFile(path.join(rssDir, f), 'utf8')),
          ),
        );
        expect(peaks.length).toBeGreaterThan(0);
        expect(Math.max(...peaks)).toBeLessThan(RSS_BOUND);
      } finally {
        await fs.rm(rssDir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  it('an entry larger than the room in RUNNER_TEMP (a 256 MiB tmpfs, root only) is refused before writing', async () => {
    if (process.getuid?.() !== 0) {
      console.warn('skipped: mounting a tmpfs for RUNNER_TEMP needs root');
      return;
    }
    // 300 MiB: an honest pack's size, which the service announces before a byte is written.
    await serve(Buffer.concat([Buffer.from('CLYDEPK\n'), Buffer.alloc(300 * MiB, 1)]));
    const mnt = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', mnt]);
    try {
      const run = await runDemoJob(world, { with: { save: 'never' }, env: { RUNNER_TEMP: mnt } });
      expect(run.main.exitCode).toBe(0);
      expect(run.main.outputs['tier']).toBe('none');
      expect(warnings(run.main)).toMatch(
        /could not be restored.*the entry is 300\.0 MiB, more than the free space in /s,
      );
      // Nothing large was ever written (the tmpfs did not fill).
      const st = await fs.statfs(mnt);
      expect((st.blocks - st.bfree) * st.bsize).toBeLessThan(MiB);
    } finally {
      execFileSync('umount', [mnt]);
      await fs.rm(mnt, { recursive: true, force: true });
    }
  }, 300_000);

  it.each(['native', 'node'])(
    'a file over 2 GiB is saved to the runner cache by post and restored on a fresh runner (%s backend)',
    async (backend) => {
      world.service.reset();
      await fs.rm(world.localStore, { recursive: true, force: true });
      const dir = path.join(world.workspace, 'big');
      await fs.mkdir(dir, { recursive: true });
      const big = path.join(dir, 'zeros.bin');
      const size = 2 * GiB + 12_345;
      // Sparse: it takes no disk until restored, and compresses to almost nothing.
      const fh = await fs.open(big, 'w');
      await fh.truncate(size);
      await fh.close();
      await fs.writeFile(path.join(dir, 'small.txt'), 'beside the big one\n');
      const before = await sha256File(big);
      const inputs = { path: 'big', name: 'big', 'local-cache-dir': world.localStore };
      const env = { CLYDE_ZSTD_BACKEND: backend };

      const first = await runDemoJob(world, { inputs, env, targets: () => undefined });
      expect(first.main.exitCode).toBe(0);
      expect(first.posts[0]?.exitCode).toBe(0);
      expect(warnings(first.posts[0]!)).toBe('');
      expect(world.service.entries().map((e) => e.key)).toContain(first.main.outputs['cache-key']);

      // A fresh runner: empty local store, no outputs.
      await fs.rm(world.localStore, { recursive: true, force: true });
      await fs.rm(dir, { recursive: true, force: true });
      const second = await runDemoJob(world, {
        inputs,
        env,
        targets: () => undefined,
        with: { save: 'never' },
      });
      expect(warnings(second.main)).toBe('');
      expect(second.main.outputs).toMatchObject({ 'cache-hit': 'true', tier: 'remote' });
      expect((await fs.stat(big)).size).toBe(size);
      expect(await sha256File(big)).toBe(before);
      expect(await fs.readFile(path.join(dir, 'small.txt'), 'utf8')).toBe('beside the big one\n');
      await fs.rm(dir, { recursive: true, force: true });
    },
    600_000,
  );
});
