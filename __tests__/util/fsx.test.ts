import { describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  RENAME_RETRY_MS,
  isInside,
  relativeInside,
  rename,
  type RenameHost,
} from '../../src/util/fsx.js';

describe('isInside: segment by segment, under either platform rules', () => {
  const cases: [string, path.PlatformPath, string, string, string | undefined][] = [
    ['posix: the same path', path.posix, '/ws', '/ws', ''],
    ['posix: a child', path.posix, '/ws', '/ws/out/bin', 'out/bin'],
    ['posix: a name beginning with ..', path.posix, '/ws', '/ws/..cache/a.txt', '..cache/a.txt'],
    ['posix: a name that is only dots', path.posix, '/ws', '/ws/.../a', '.../a'],
    ['posix: the parent', path.posix, '/ws', '/', undefined],
    ['posix: a sibling', path.posix, '/ws', '/ws2/x', undefined],
    ['posix: up and over', path.posix, '/ws/a', '/ws/b', undefined],
    ['posix: case matters', path.posix, '/ws', '/WS/x', undefined],
    ['win32: a child', path.win32, 'C:\\ws', 'C:\\ws\\out', 'out'],
    ['win32: either separator', path.win32, 'C:\\ws', 'C:/ws/out/bin', 'out\\bin'],
    ['win32: case folds', path.win32, 'C:\\ws', 'c:\\WS\\..cache', '..cache'],
    ['win32: a name beginning with ..', path.win32, 'C:\\ws', 'C:\\ws\\..cache\\a', '..cache\\a'],
    ['win32: the parent', path.win32, 'C:\\ws', 'C:\\', undefined],
    ['win32: another drive', path.win32, 'C:\\ws', 'D:\\ws\\x', undefined],
    ['win32: UNC share', path.win32, '\\\\srv\\share\\ws', '\\\\srv\\share\\ws\\x', 'x'],
    ['win32: another share', path.win32, '\\\\srv\\share\\ws', '\\\\srv\\other\\ws', undefined],
  ];
  it.each(cases)('%s', (_label, rules, parent, child, rel) => {
    expect(relativeInside(parent, child, rules)).toBe(rel);
    expect(isInside(parent, child, rules)).toBe(rel !== undefined);
  });

  it("uses this machine's rules by default", () => {
    const ws = path.resolve('/ws');
    expect(isInside(ws, path.join(ws, '..cache'))).toBe(true);
    expect(isInside(ws, path.dirname(ws))).toBe(false);
  });
});

describe('rename: retried on Windows while another process holds the file (issue 12 row 11)', () => {
  /** A host whose rename fails with `code` `failures` times, then really renames. */
  function flakyHost(platform: NodeJS.Platform, code: string, failures: number) {
    let clock = 0;
    const pauses: number[] = [];
    const calls = { n: 0 };
    const host: RenameHost = {
      platform,
      rename: async (from, to) => {
        calls.n++;
        if (calls.n <= failures) {
          throw Object.assign(new Error(`${code}: operation not permitted, rename`), { code });
        }
        await fs.rename(from, to);
      },
      isDirectory: async (p) => (await fs.lstat(p).catch(() => undefined))?.isDirectory() === true,
      sleep: async (ms) => {
        pauses.push(ms);
        clock += ms;
      },
      now: () => clock,
    };
    return { host, pauses, calls };
  }

  async function twoFiles(): Promise<{ dir: string; from: string; to: string }> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-rename-'));
    const from = path.join(dir, 'new');
    await fs.writeFile(from, 'fresh');
    return { dir, from, to: path.join(dir, 'dest') };
  }

  it.each(['EPERM', 'EACCES', 'EBUSY'])(
    'win32: %s while the new file is held is retried until the rename goes through',
    async (code) => {
      const { dir, from, to } = await twoFiles();
      await fs.writeFile(to, 'old');
      const { host, pauses, calls } = flakyHost('win32', code, 5);
      await rename(from, to, host);
      expect(await fs.readFile(to, 'utf8')).toBe('fresh');
      expect(calls.n).toBe(6);
      expect(pauses).toEqual([10, 20, 30, 40, 50]);
      await fs.rm(dir, { recursive: true });
    },
  );

  it('win32: gives up with the last error once the retry time is spent, leaving the file', async () => {
    const { dir, from, to } = await twoFiles();
    const { host, pauses } = flakyHost('win32', 'EPERM', Number.MAX_SAFE_INTEGER);
    await expect(rename(from, to, host)).rejects.toMatchObject({ code: 'EPERM' });
    const waited = pauses.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThanOrEqual(RENAME_RETRY_MS);
    expect(waited).toBeLessThan(RENAME_RETRY_MS + 100);
    expect(Math.max(...pauses)).toBe(100);
    expect(await fs.readFile(from, 'utf8')).toBe('fresh');
    await fs.rm(dir, { recursive: true });
  });

  it('win32: a directory in the way is not waited for', async () => {
    const { dir, from, to } = await twoFiles();
    await fs.mkdir(to);
    const { host, pauses } = flakyHost('win32', 'EPERM', Number.MAX_SAFE_INTEGER);
    await expect(rename(from, to, host)).rejects.toMatchObject({ code: 'EPERM' });
    expect(pauses).toEqual([]);
    await fs.rm(dir, { recursive: true });
  });

  it.each<[NodeJS.Platform, string]>([
    ['linux', 'EPERM'],
    ['darwin', 'EBUSY'],
    ['win32', 'ENOENT'],
    ['win32', 'EXDEV'],
  ])('%s: %s is thrown at once', async (platform, code) => {
    const { dir, from, to } = await twoFiles();
    const { host, pauses, calls } = flakyHost(platform, code, 1);
    await expect(rename(from, to, host)).rejects.toMatchObject({ code });
    expect(calls.n).toBe(1);
    expect(pauses).toEqual([]);
    await fs.rm(dir, { recursive: true });
  });
});
