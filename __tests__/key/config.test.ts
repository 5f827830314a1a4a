import { describe, expect, it } from '@jest/globals';
import { canonicalConfig } from '../../src/key/index.js';
import { configComponent } from '../../src/key/config.js';

const hashOf = (text: string) => configComponent(text).hash;

describe('config', () => {
  const BASE = 'opt: 2\nflags: [-g, -Wall]\nenv:\n  CC: gcc\n  CXX: g++\n';

  it.each([
    ['keys reordered at every level', 'env:\n  CXX: g++\n  CC: gcc\nflags: [-g, -Wall]\nopt: 2\n'],
    ['flow style', '{opt: 2, flags: ["-g", "-Wall"], env: {CC: gcc, CXX: g++}}'],
    [
      'block sequence, comments, blank lines',
      '\n# c\nopt: 2   \nflags:\n  - -g\n  - -Wall\nenv: {CC: gcc, CXX: "g++"}\n\n',
    ],
    ['CRLF line endings', BASE.replace(/\n/g, '\r\n')],
  ])('keeps the hash: %s', (_what, text) => {
    expect(hashOf(text)).toBe(hashOf(BASE));
  });

  it.each([
    ['a changed value', BASE.replace('opt: 2', 'opt: 3')],
    ['a number that became a string', BASE.replace('opt: 2', 'opt: "2"')],
    ['reordered list items', BASE.replace('[-g, -Wall]', '[-Wall, -g]')],
    ['an added key', `${BASE}extra: true\n`],
    ['a nested value', BASE.replace('CC: gcc', 'CC: clang')],
  ])('changes the hash: %s', (_what, text) => {
    expect(hashOf(text)).not.toBe(hashOf(BASE));
  });

  it('sorts keys by byte order into canonical JSON', () => {
    expect(canonicalConfig('b: 1\na: {z: null, B: [1, x]}\n_: true')).toEqual({
      form: 'yaml',
      text: '{"_":true,"a":{"B":[1,"x"],"z":null},"b":1}',
    });
  });

  it.each([
    ['free text', 'CFLAGS=-O2 -g', 'CFLAGS=-O2 -g'],
    ['a sequence', '- a\n- b\n', '- a\n- b'],
    ['duplicate keys', 'a: 1\na: 2\n', 'a: 1\na: 2'],
    ['several documents', 'a: 1\n---\nb: 2\n', 'a: 1\n---\nb: 2'],
    ['a non-finite number', 'x: .inf', 'x: .inf'],
    ['empty', '', ''],
    ['blank lines and trailing spaces', '\n\n  one  \r\ntwo\t\n\n', '  one\ntwo'],
  ])('hashes %s as normalised text', (_what, text, canonical) => {
    expect(canonicalConfig(text)).toEqual({ form: 'text', text: canonical });
  });

  it('normalises text: trailing whitespace and surrounding blank lines do not count', () => {
    expect(hashOf('CFLAGS=-O2\n')).toBe(hashOf('\nCFLAGS=-O2   \r\n\n'));
    expect(hashOf('CFLAGS=-O2')).not.toBe(hashOf('CFLAGS=-O3'));
    expect(hashOf('  CFLAGS=-O2')).not.toBe(hashOf('CFLAGS=-O2'));
  });

  it('records a display value of at most 200 characters', () => {
    const long = `k: ${'v'.repeat(1000)}`;
    const c = configComponent(long);
    expect(c.kind).toBe('config');
    expect(Array.from(c.value ?? '').length).toBeLessThanOrEqual(200);
    expect(c.value?.startsWith('{"k":"vvv')).toBe(true);
    expect(configComponent('a: 1').value).toBe('{"a":1}');
  });
});
