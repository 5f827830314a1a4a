import { describe, expect, it } from '@jest/globals';
import * as path from 'node:path';
import { isInside, relativeInside } from '../../src/util/fsx.js';

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
