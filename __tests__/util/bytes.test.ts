import { describe, expect, it } from '@jest/globals';
import { compareBytes, sortBytes, toPosix } from '../../src/util/bytes.js';

describe('byte-order sorting', () => {
  it('sorts by UTF-8 bytes, not locale', () => {
    expect(sortBytes(['b', 'B', 'a', 'Z', '_', 'é'])).toEqual(['B', 'Z', '_', 'a', 'b', 'é']);
    expect(compareBytes('a/b', 'a-b')).toBeGreaterThan(0);
  });
  it('normalises separators', () => {
    expect(toPosix('.\\dist\\a\\')).toBe('dist/a');
  });
});
