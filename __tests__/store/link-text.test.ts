/**
 * Issue 12 row 4: symlinks saved on Windows. readlink gives `\` separators there and a
 * junction's target is absolute; the manifest records posix text that restore accepts, so a
 * pnpm-style node_modules comes back whole (Windows path rules injected).
 */
import { describe, expect, it } from '@jest/globals';
import * as path from 'node:path';
import {
  parseManifest,
  savedLinkText,
  unsafeTargetReason,
  type LinkHost,
} from '../../src/store/manifest.js';
import { dirEntry, dirManifest, fileEntry, linkEntry } from './helpers.js';

const win: LinkHost = { platform: 'win32', path: path.win32 };
const root = 'C:\\ws\\node_modules';

describe('savedLinkText on Windows', () => {
  const cases: [string, string, string, string][] = [
    [
      'a relative link Node wrote',
      '..\\.pnpm\\foo@1.0.0\\node_modules\\foo',
      root + '\\bar',
      '../.pnpm/foo@1.0.0/node_modules/foo',
    ],
    [
      'a junction inside the root',
      'C:\\ws\\node_modules\\.pnpm\\foo@1.0.0\\node_modules\\foo',
      root,
      '.pnpm/foo@1.0.0/node_modules/foo',
    ],
    [
      'a junction with the \\\\?\\ prefix',
      '\\\\?\\C:\\ws\\node_modules\\.pnpm\\foo@1.0.0\\node_modules\\foo',
      root,
      '.pnpm/foo@1.0.0/node_modules/foo',
    ],
    [
      'a junction in another case of the root',
      'c:\\WS\\Node_Modules\\.pnpm\\foo',
      root + '\\.bin',
      '../.pnpm/foo',
    ],
    ['a link to its own directory', 'C:\\ws\\node_modules\\.pnpm', root + '\\.pnpm', '.'],
  ];
  it.each(cases)('%s', (_label, target, linkDir, want) => {
    const text = savedLinkText(target, linkDir, root, win);
    expect(text).toBe(want);
    expect(unsafeTargetReason(text)).toBeUndefined();
  });

  it('an absolute target outside the root stays absolute and is refused as before', () => {
    const text = savedLinkText('D:\\elsewhere\\lib', root, root, win);
    expect(text).toBe('D:/elsewhere/lib');
    expect(unsafeTargetReason(text)).toBe('drive letter in target');
  });

  it('elsewhere a backslash is part of the name, kept (and refused) as before', () => {
    const linux: LinkHost = { platform: 'linux', path: path.posix };
    expect(savedLinkText('..\\x', '/ws/out', '/ws/out', linux)).toBe('..\\x');
  });

  it('a pnpm-style tree saved from Windows is a manifest restore accepts', () => {
    const link = (p: string, target: string, dir: string) =>
      linkEntry(p, savedLinkText(target, dir, root, win));
    const m = parseManifest(
      dirManifest(
        [
          dirEntry('.pnpm'),
          dirEntry('.pnpm/foo@1.0.0'),
          dirEntry('.pnpm/foo@1.0.0/node_modules'),
          dirEntry('.pnpm/foo@1.0.0/node_modules/foo'),
          fileEntry('.pnpm/foo@1.0.0/node_modules/foo/index.js', 'module.exports = 1;\n'),
          link('foo', 'C:\\ws\\node_modules\\.pnpm\\foo@1.0.0\\node_modules\\foo', root),
          dirEntry('.bin'),
          link('.bin/foo', '..\\foo\\index.js', `${root}\\.bin`),
        ],
        'node_modules',
      ),
    );
    const links = m.roots[0]?.entries.filter((e) => e.type === 'symlink').map((e) => e.target);
    expect(links).toEqual(['.pnpm/foo@1.0.0/node_modules/foo', '../foo/index.js']);
  });
});
