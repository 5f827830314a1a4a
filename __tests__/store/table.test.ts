/**
 * Entry tables (table.ts), the binary form of artifacts and stat caches: a manifest survives
 * the round trip with where its grouped files live, and a damaged or hostile table is refused
 * before anything is used (StoreError or UnsafeEntryError: the restore becomes a miss).
 */
import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { Location } from '../../src/store/blobs.js';
import { MAX_ENTRIES, type Manifest, type ManifestRoot } from '../../src/store/manifest.js';
import {
  decodeTable,
  encodeTable,
  GroupList,
  ROW,
  type TableHeader,
  type TableRoot,
} from '../../src/store/table.js';
import { manifestOfTable, manifestTable, tableManifest } from '../../src/store/table-manifest.js';
import { hostileTables, placedTable, rows } from './hostile-cases.js';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

const group = hex('the group');
const manifest: Manifest = {
  schema: 1,
  roots: [
    {
      name: 'out',
      kind: 'dir',
      mode: 0o755,
      mtimeMs: 1000.5,
      entries: [
        { path: 'a', type: 'dir', mode: 0o750, size: 0, mtimeMs: 1 },
        { path: 'a/b', type: 'dir', mode: 0o700, size: 0, mtimeMs: 2 },
        { path: 'a/b/x.js', type: 'file', mode: 0o644, size: 3, mtimeMs: 3, digest: hex('xxx') },
        { path: 'a/empty', type: 'dir', mode: 0o755, size: 0, mtimeMs: 4 },
        { path: 'a/link', type: 'symlink', mode: 0o777, size: 0, mtimeMs: 5, target: 'b/x.js' },
        { path: 'a/y.bin', type: 'file', mode: 0o755, size: 4, mtimeMs: 6, digest: hex('own!') },
        { path: 'é z', type: 'file', mode: 0o600, size: 3, mtimeMs: 7, digest: hex('xxx') },
      ],
    },
    {
      name: 'tool',
      kind: 'file',
      mode: 0o755,
      mtimeMs: 8,
      entries: [],
      file: { path: '', type: 'file', mode: 0o755, size: 5, mtimeMs: 8, digest: hex('tool!') },
    },
    { name: 'gone', kind: 'absent', entries: [] },
  ],
};
const locations = new Map<string, Location>([
  [hex('xxx'), { group, groupSize: 8, offset: 0, size: 3 }],
  [hex('tool!'), { group, groupSize: 8, offset: 3, size: 5 }],
]);

function encoded(m: Manifest = manifest): Buffer {
  const groups = new GroupList();
  return encodeTable(
    { groups: groups.list },
    manifestTable(m.roots, (d) => locations.get(d), groups),
  );
}

/** The table with its header changed (names and rows kept). */
function withHeader(body: Buffer, change: (h: TableHeader) => unknown): Buffer {
  const t = decodeTable(body);
  const headerLen = body.readUInt32LE(8);
  const namesLen = body.readUInt32LE(12);
  const names = body.subarray(16 + headerLen, 16 + headerLen + namesLen);
  const header = Buffer.from(JSON.stringify(change(structuredClone(t.header))));
  const digestsAt = Math.ceil((16 + header.length + names.length) / 8) * 8;
  const out = Buffer.alloc(digestsAt + body.length - t.digestsAt);
  body.copy(out, 0, 0, 16);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 16);
  names.copy(out, 16 + header.length);
  body.copy(out, digestsAt, t.digestsAt);
  return out;
}

function refusal(body: Buffer): string {
  try {
    tableManifest(decodeTable(body));
  } catch (err) {
    return err instanceof Error ? err.name : 'thrown';
  }
  return 'accepted';
}

describe('entry tables', () => {
  it('round trip: the manifest, file and absent roots, and where grouped files live', () => {
    const back = tableManifest(decodeTable(encoded()));
    expect(back.manifest).toEqual(manifest);
    expect(back.locations).toEqual(locations);
  });

  it('a stat cache header carries key, time and root paths; rows keep inode and mtime', () => {
    const groups = new GroupList();
    const roots = manifestTable(
      manifest.roots,
      () => undefined,
      groups,
      (r) => `/abs/${r}`,
      (e) => (e.type === 'file' ? [42, 99.25] : undefined),
    );
    const t = decodeTable(encodeTable({ key: 'k', recordedAt: 123.5, groups: groups.list }, roots));
    expect([t.header.key, t.header.recordedAt, t.header.roots.map((r) => r.abs)]).toEqual([
      'k',
      123.5,
      ['/abs/out', '/abs/tool', '/abs/gone'],
    ]);
    const x = t.names.indexOf('x.js');
    expect([...t.nums.subarray(x * 7, x * 7 + 7)]).toEqual([ROW.file, 0o644, 3, 99.25, 42, -1, 0]);
  });

  it('refuses a damaged table before using it', () => {
    const good = encoded();
    const damage: [string, () => Buffer][] = [
      ['truncated', () => good.subarray(0, good.length - 1)],
      ['one byte more', () => Buffer.concat([good, Buffer.alloc(1)])],
      ['not a table', () => Buffer.from('{"schema":1}')],
      [
        'unknown version',
        () => {
          const b = Buffer.from(good);
          b.writeUInt32LE(9, 4);
          return b;
        },
      ],
      ['header not JSON', () => Buffer.from(good).fill(0x21, 16, 20)],
      ['more rows than bytes', () => withHeader(good, (h) => ((h.roots[0]!.dirs[0]![1] += 1), h))],
      [
        'a million rows claimed',
        () => withHeader(good, (h) => ((h.roots[0]!.dirs[0]![1] = MAX_ENTRIES + 1), h)),
      ],
      ['a bad group', () => withHeader(good, (h) => ((h.groups[0]![0] = '../x'), h))],
      ['a directory twice', () => withHeader(good, (h) => (h.roots[0]!.dirs.push(['a', 0]), h))],
      ['unknown root kind', () => withHeader(good, (h) => ({ ...h, roots: [{ kind: 'fifo' }] }))],
    ];
    for (const [what, spoil] of damage) {
      let body: Buffer;
      try {
        body = spoil();
      } catch (err) {
        // (withHeader decodes first: the spoiling itself may be what is refused)
        body = Buffer.alloc(0);
        expect([what, (err as Error).name]).toEqual([what, 'StoreError']);
      }
      expect([what, refusal(body)]).toEqual([what, 'StoreError']);
    }
  });

  it('refuses hostile rows: names that are paths, rows no directory reaches, slices outside their group', () => {
    for (const [what, body, name] of hostileTables()) {
      expect([what, refusal(body)]).toEqual([what, name]);
    }
    // (and the well-formed case passes, so the refusals above are for what they name)
    expect(refusal(placedTable(5, 0))).toBe('accepted');
  });

  it('checks a file root and an absent root', () => {
    const root = (r: Partial<TableRoot>): Buffer =>
      encodeTable({ groups: [] }, [{ name: 'r', kind: 'file', dirs: [], ...r } as TableRoot]);
    expect(refusal(root({ dirs: [['', rows([ROW.file, ''])]] }))).toBe('accepted');
    expect(refusal(root({ dirs: [['', rows([ROW.file, ''], [ROW.file, 'b'])]] }))).toBe(
      'StoreError',
    );
    expect(refusal(root({ dirs: [['', rows([ROW.dir, ''])]] }))).toBe('StoreError');
    expect(refusal(root({ kind: 'absent', dirs: [['', rows([ROW.file, 'x'])]] }))).toBe(
      'StoreError',
    );
    const dirRoot: ManifestRoot = { name: 'd', kind: 'dir', mode: 0o755, mtimeMs: 1, entries: [] };
    expect(refusal(encoded({ schema: 1, roots: [dirRoot] }))).toBe('accepted');
  });
});

describe('manifestOfTable', () => {
  it('reads one table once: the same manifest again, each caller with its own map of locations', () => {
    const body = placedTable(5, 0);
    const a = manifestOfTable(body);
    const b = manifestOfTable(Buffer.from(body));
    expect(b.manifest).toBe(a.manifest);
    expect(b.locations).toEqual(a.locations);
    expect(a.locations.size).toBe(1);
    a.locations.clear();
    expect(b.locations.size).toBe(1);
    expect(manifestOfTable(body).locations.size).toBe(1);
    // Other bytes, another manifest; a refused table is refused every time.
    expect(manifestOfTable(placedTable(4, 0)).manifest).not.toBe(a.manifest);
    for (let i = 0; i < 2; i++) expect(() => manifestOfTable(placedTable(6, 0))).toThrow();
  });
});
