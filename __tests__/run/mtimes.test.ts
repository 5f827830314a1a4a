/**
 * Marking the sources that differ from a restored entry: newer than the outputs' mtime, and a
 * failure throws (restore.ts then restores nothing of that entry).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { markChangedSources } from '../../src/run/mtimes.js';
import { cleanup, makeTree } from '../key/helpers.js';

afterEach(cleanup);

const OLD = new Date('2001-01-01T00:00:00Z');

async function workspace(): Promise<string> {
  const ws = makeTree({ 'a.c': 'a\n', 'b.c': 'b\n', 'c.c': 'c\n' });
  await fs.symlink('c.c', path.join(ws, 'link.c'));
  for (const f of ['a.c', 'b.c', 'c.c']) await fs.utimes(path.join(ws, f), OLD, OLD);
  await fs.lutimes(path.join(ws, 'link.c'), OLD, OLD);
  return ws;
}

const mtime = async (ws: string, rel: string): Promise<number> =>
  (await fs.lstat(path.join(ws, rel))).mtimeMs;

describe('markChangedSources', () => {
  it('marks the named sources (a symlink itself) newer than the time it returns', async () => {
    const ws = await workspace();
    const before = Date.now();
    const outputsAt = await markChangedSources(ws, { paths: ['a.c', 'gone.c', 'link.c'] });
    expect(outputsAt).toBeGreaterThanOrEqual(before);
    expect(await mtime(ws, 'a.c')).toBeGreaterThan(outputsAt);
    expect(await mtime(ws, 'link.c')).toBeGreaterThan(outputsAt);
    expect(await mtime(ws, 'b.c')).toBe(OLD.getTime());
    expect(await mtime(ws, 'c.c')).toBe(OLD.getTime());
    await expect(fs.lstat(path.join(ws, 'gone.c'))).rejects.toThrow();
  });

  it('marks nothing and returns the present time when nothing changed', async () => {
    const ws = await workspace();
    const before = Date.now();
    expect(await markChangedSources(ws, { paths: [] })).toBeGreaterThanOrEqual(before);
    expect(await mtime(ws, 'a.c')).toBe(OLD.getTime());
  });

  it('throws, naming the source, when one cannot be marked', async () => {
    const ws = await workspace();
    await expect(markChangedSources(ws, { paths: ['a.c/inner.c'] })).rejects.toThrow(
      /could not mark a\.c\/inner\.c/,
    );
  });
});
