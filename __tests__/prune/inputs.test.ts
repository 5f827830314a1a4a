/** The prune inputs: one parser per kind, errors naming the input and the accepted form. */
import { describe, expect, it } from '@jest/globals';
import {
  parseDuration,
  parseSize,
  parseTtl,
  readGcConfig,
  readPruneConfig,
} from '../../src/inputs.js';

const DAY = 86_400_000;

describe('parseSize', () => {
  it.each([
    ['10GB', 10e9],
    ['10 GB', 10e9],
    ['1.5TB', 1.5e12],
    ['512MiB', 512 * 2 ** 20],
    ['1KiB', 1024],
    ['1kb', 1000],
    ['1024', 1024],
    ['0', 0],
    ['7B', 7],
    ['', null],
  ])('%s', (raw, bytes) => {
    expect(parseSize('max-size', raw)).toBe(bytes);
  });
  it.each(['10XB', 'GB', '-1GB', '1e9', 'ten'])('refuses %s', (raw) => {
    expect(() => parseSize('max-size', raw)).toThrow(
      /Input 'max-size': .* is not a size; use .*KiB.*10GB/,
    );
  });
});

describe('parseDuration', () => {
  it.each([
    ['30d', 30 * DAY],
    ['2w', 14 * DAY],
    ['12h', 12 * 3_600_000],
    ['90m', 90 * 60_000],
    ['45s', 45_000],
    ['1.5h', 5_400_000],
    ['0', 0],
    ['', null],
  ])('%s', (raw, ms) => {
    expect(parseDuration('max-age', raw)).toBe(ms);
  });
  it.each(['30', '30D', '1y', 'd', '-1d'])('refuses %s', (raw) => {
    expect(() => parseDuration('max-age', raw)).toThrow(
      /Input 'max-age': .* is not a duration; use .*s, m, h, d or w/,
    );
  });
});

describe('parseTtl', () => {
  it.each([
    ['', { contentMs: 7 * DAY }],
    ['content=3d', { contentMs: 3 * DAY }],
    [' content = 14d ,', { contentMs: 14 * DAY }],
    ['\ncontent=none', { contentMs: null }],
    ['CONTENT=off', { contentMs: null }],
  ])('%j', (raw, ttl) => {
    expect(parseTtl('ttl', raw)).toEqual(ttl);
  });
  it.each(['blobs=1d', '7d', 'none', 'content=', 'content=1d, content=2d', 'content=soon'])(
    'refuses %j',
    (raw) => {
      expect(() => parseTtl('ttl', raw)).toThrow(/Input 'ttl': /);
    },
  );
  it.each(['metadata=1d', 'content=7d, metadata=1d'])(
    'refuses %j, the class earlier versions had, naming the accepted form',
    (raw) => {
      expect(() => parseTtl('ttl', raw)).toThrow(
        "Input 'ttl': 'metadata=1d' is not a TTL; use content=<duration> (the one class, 'content'), e.g. content=7d; content=none for no TTL.",
      );
    },
  );
});

describe('readPruneConfig', () => {
  it('has the documented defaults and is frozen', () => {
    const c = readPruneConfig(() => '');
    expect(c).toEqual({
      maxSizeBytes: null,
      maxAgeMs: null,
      ttl: { contentMs: 7 * DAY },
      keepVersions: 1,
      cleanupIntervalMs: DAY,
    });
    expect(Object.isFrozen(c.ttl)).toBe(true);
  });
  it('reads every input', () => {
    const inputs: Record<string, string> = {
      'max-size': '10GB',
      'max-age': '30d',
      ttl: 'content=2d',
      'keep-versions': '3',
      'cleanup-interval': '0',
    };
    expect(readPruneConfig((n) => inputs[n] ?? '')).toEqual({
      maxSizeBytes: 10e9,
      maxAgeMs: 30 * DAY,
      ttl: { contentMs: 2 * DAY },
      keepVersions: 3,
      cleanupIntervalMs: 0,
    });
  });
  it('refuses a negative keep-versions', () => {
    expect(() => readPruneConfig((n) => (n === 'keep-versions' ? '-1' : ''))).toThrow(
      /Input 'keep-versions': '-1' is not a whole number >= 0/,
    );
  });
});

describe('readGcConfig', () => {
  const env = { GITHUB_REPOSITORY: 'octo/demo', HOME: '/home/u', GITHUB_WORKSPACE: '/ws' };
  it('defaults: remote on, local off, clyde- prefix, api.github.com', () => {
    const c = readGcConfig((n) => (n === 'token' ? 't0k' : ''), env);
    expect(c).toMatchObject({
      token: 't0k',
      apiUrl: 'https://api.github.com',
      repository: 'octo/demo',
      local: false,
      remote: true,
      dryRun: false,
      keyPrefix: 'clyde-',
      includeForeignKeys: false,
      localCacheDir: '/home/u/.clyde/cache',
    });
  });
  it('needs a token for the remote', () => {
    expect(() => readGcConfig(() => '', env)).toThrow(/Input 'token': is empty.*actions: write/);
    expect(readGcConfig((n) => (n === 'remote' ? 'false' : ''), env).remote).toBe(false);
  });
});
