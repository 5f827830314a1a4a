import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { isInputError } from '../../src/errors.js';
import { computeKey, LOCKFILE_NAMES, type CacheKey } from '../../src/key/index.js';
import { cleanup, inputs, makeTree } from './helpers.js';

afterEach(cleanup);

const hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const lockfiles = (key: CacheKey) =>
  key.manifest.components.filter((c) => c.kind === 'lockfile').map((c) => [c.name, c.hash]);

describe('lockfiles', () => {
  it('lists the common names', () => {
    for (const name of [
      'package-lock.json',
      'yarn.lock',
      'pnpm-lock.yaml',
      'Cargo.lock',
      'go.sum',
    ]) {
      expect(LOCKFILE_NAMES).toContain(name);
    }
    expect(new Set(LOCKFILE_NAMES).size).toBe(LOCKFILE_NAMES.length);
  });

  it("'auto' detects lockfiles in the workspace root only", async () => {
    const ws = makeTree({
      'go.sum': 'g\n',
      'Cargo.lock': 'c\n',
      'sub/package-lock.json': '{}\n',
      'notalock.txt': 'n\n',
    });
    const key = await computeKey(inputs(ws, { lockfiles: 'auto' }));
    expect(lockfiles(key)).toEqual([
      ['lockfile:Cargo.lock', hex('c\n')],
      ['lockfile:go.sum', hex('g\n')],
    ]);
  });

  it('hashes a CRLF checkout like the LF one, but keeps binary lockfiles as they are', async () => {
    const lf = makeTree({ 'yarn.lock': 'a\nb\n', 'bun.lockb': Buffer.from([0, 13, 10, 1]) });
    const crlf = makeTree({ 'yarn.lock': 'a\r\nb\r\n', 'bun.lockb': Buffer.from([0, 10, 1]) });
    const [kl, kc] = [await computeKey(inputs(lf)), await computeKey(inputs(crlf))];
    const [bl, yl] = lockfiles(kl);
    const [bc, yc] = lockfiles(kc);
    expect(bl?.[0]).toBe('lockfile:bun.lockb');
    expect(yl?.[0]).toBe('lockfile:yarn.lock');
    expect(yc).toEqual(yl);
    expect(bc?.[1]).not.toBe(bl?.[1]);
    expect(bl?.[1]).toBe(hex(Buffer.from([0, 13, 10, 1])));
  });

  it('takes an explicit list in any order, relative to the workspace', async () => {
    const ws = makeTree({ 'deps/a.lock': 'a', 'b.lock': 'b', 'package-lock.json': '{}' });
    const one = await computeKey(inputs(ws, { lockfiles: ['deps/a.lock', 'b.lock'] }));
    const two = await computeKey(inputs(ws, { lockfiles: ['./b.lock', 'deps/a.lock', ''] }));
    expect(lockfiles(one)).toEqual([
      ['lockfile:b.lock', hex('b')],
      ['lockfile:deps/a.lock', hex('a')],
    ]);
    expect(two.key).toBe(one.key);
  });

  it('an empty explicit list means no lockfile components', async () => {
    const ws = makeTree({ 'package-lock.json': '{}' });
    expect(lockfiles(await computeKey(inputs(ws, { lockfiles: [] })))).toEqual([]);
  });

  it.each([[['missing.lock']], [['present.lock', 'deps/']], [['../outside.lock']]])(
    'throws InputError naming lockfiles for %j',
    async (list) => {
      const ws = makeTree({ 'present.lock': 'p', 'deps/x': 'x' });
      const err = await computeKey(inputs(ws, { lockfiles: list })).catch((e: unknown) => e);
      expect(isInputError(err)).toBe(true);
      expect((err as { input: string }).input).toBe('lockfiles');
      expect((err as Error).message).toContain(list.at(-1));
    },
  );
});
