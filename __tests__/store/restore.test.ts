/**
 * Restore checks the room its files need (restore.ts): an entry whose files take more than the
 * free space where they are restored is refused before anything is written.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { requestFor } from '../../test-support/store/fixtures.js';
import { withSandbox } from './helpers.js';

const MiB = 1024 * 1024;

describe('restore and free space', () => {
  it('refuses files larger than the free space where they go (root only: mounts a tmpfs)', async () => {
    if (process.getuid?.() !== 0) {
      console.warn('skipped: mounting a tmpfs needs root');
      return;
    }
    await withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await fs.mkdir(out, { recursive: true });
      // 32 MiB of zeros: a few kilobytes in the store, too much for a 16 MiB filesystem.
      const fh = await fs.open(path.join(out, 'zeros.bin'), 'w');
      await fh.truncate(32 * MiB);
      await fh.close();
      const store = await LocalStore.open(sb.store);
      await store.save(requestFor('k', out));

      const mnt = path.join(sb.base, 'small');
      await fs.mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
      try {
        await expect(
          store.restore('k', [{ name: 'out', absPath: path.join(mnt, 'out') }]),
        ).rejects.toThrow(/files take 32\.0 MiB, more than the .* free where/);
        expect(await fs.readdir(mnt)).toEqual([]);
        const st = await fs.statfs(mnt);
        expect((st.blocks - st.bfree) * st.bsize).toBeLessThan(MiB);
      } finally {
        execFileSync('umount', [mnt]);
      }
    });
  });
});
