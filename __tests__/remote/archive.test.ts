/**
 * The remote archive's pack member against its budget (src/remote/archive.ts): a declared size
 * above the budget is refused before anything is written.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractPack } from '../../src/remote/archive.js';
import type { Compression } from '../../src/remote/twirp.js';
import { archiveOf, tarBomb } from '../../test-support/sizes.js';

const MiB = 1024 ** 2;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-archive-'));
  try {
    await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe.each(['zstd-without-long', 'gzip'] as Compression[])('extractPack (%s)', (compression) => {
  it('writes a pack within its budget, and refuses one above it before writing', () =>
    withDir(async (dir) => {
      const pack = randomBytes(MiB);
      const archive = path.join(dir, 'archive');
      await fs.writeFile(archive, await archiveOf(compression, pack));
      const dest = path.join(dir, 'clyde.pack');
      await extractPack(archive, compression, dest, { maxBytes: 2 * MiB });
      expect((await fs.readFile(dest)).equals(pack)).toBe(true);
      await fs.rm(dest);
      await expect(extractPack(archive, compression, dest, { maxBytes: MiB / 2 })).rejects.toThrow(
        /pack declares 1\.0 MiB, more than the largest pack accepted \(512\.0 KiB\)/,
      );
      await expect(fs.stat(dest)).rejects.toThrow();
    }));

  it('refuses a tar bomb: a small archive whose pack declares 2 GiB', () =>
    withDir(async (dir) => {
      const archive = path.join(dir, 'archive');
      await tarBomb(compression, 'clyde.pack', 2 * 1024 ** 3, archive);
      const dest = path.join(dir, 'clyde.pack');
      await expect(extractPack(archive, compression, dest)).rejects.toThrow(
        /pack declares 2\.0 GiB, more than 256 times its .* archive/,
      );
      await expect(fs.stat(dest)).rejects.toThrow();
    }));
});

describe('extractPack on a small filesystem', () => {
  it('refuses a pack larger than the free space where it goes (root only: mounts a tmpfs)', async () => {
    if (process.getuid?.() !== 0) {
      console.warn('skipped: mounting a tmpfs needs root');
      return;
    }
    await withDir(async (dir) => {
      const mnt = path.join(dir, 'mnt');
      await fs.mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
      try {
        // Incompressible: the archive is as large as the pack, so only the room refuses it.
        const archive = path.join(dir, 'archive');
        await fs.writeFile(archive, await archiveOf('zstd-without-long', randomBytes(32 * MiB)));
        const dest = path.join(mnt, 'clyde.pack');
        await expect(extractPack(archive, 'zstd-without-long', dest)).rejects.toThrow(
          /pack declares 32\.0 MiB, more than the free space in/,
        );
        await expect(fs.stat(dest)).rejects.toThrow();
      } finally {
        execFileSync('umount', [mnt]);
      }
    });
  });
});
