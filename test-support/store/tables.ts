/**
 * Entries as tests write them by hand: a manifest object (well-formed or hostile) as the table
 * bytes an artifact or a pack would hold (table.ts), and packs of the current format (pack.ts)
 * around such a table. Nothing here validates: a hostile manifest becomes the table that says
 * the same thing as nearly as the format can, for the store's decoder to refuse.
 */
import { DirRows, encodeTable, GroupList, type TableRoot } from '../../src/store/table.js';
import { LINK_ANCHORS } from '../../src/store/manifest.js';
import { decodeTable } from '../../src/store/table.js';
import { tableManifest } from '../../src/store/table-manifest.js';
import type { Manifest } from '../../src/store/manifest.js';

/** Row kinds by manifest type; a type the table cannot hold gets a kind the decoder refuses. */
const KINDS: Record<string, number> = { file: 1, dir: 2, symlink: 3 };
const UNKNOWN_KIND = 9;
/** The anchor number of an anchor no reader knows. */
const UNKNOWN_ANCHOR = 99;

/** Where grouped files live, as a test states it: digest -> [group, group size, offset]. */
export type Placements = ReadonlyMap<string, readonly [string, number, number]>;

type RawEntry = Record<string, unknown>;
type RawRoot = { name: string; kind: string; mode?: number; mtimeMs?: number } & Record<
  string,
  unknown
>;

/** The table of a manifest object (`{ schema, roots }`), placing grouped files as `placed` says. */
export function tableOf(manifest: unknown, placed: Placements = new Map()): Buffer {
  const groups = new GroupList();
  const roots = (manifest as { roots: RawRoot[] }).roots.map((r): TableRoot => {
    const dirs = new Map<string, DirRows>();
    const add = (e: RawEntry): void => {
      const rel = String(e['path']);
      const cut = rel.lastIndexOf('/');
      const dir = cut < 0 ? '' : rel.slice(0, cut);
      let d = dirs.get(dir);
      if (d === undefined) dirs.set(dir, (d = new DirRows()));
      const name = rel.slice(cut + 1);
      const mode = Number(e['mode']);
      const mtimeMs = Number(e['mtimeMs']);
      if (e['type'] === 'symlink') {
        const j = d.addSymlink(name, mode, mtimeMs, String(e['target'] ?? ''));
        const anchor = e['anchor'];
        if (anchor !== undefined) {
          const at = LINK_ANCHORS.indexOf(anchor as never);
          d.set(j, 2, at < 0 ? UNKNOWN_ANCHOR : at + 1);
        }
        return;
      }
      const kind = KINDS[String(e['type'])] ?? UNKNOWN_KIND;
      const j = d.add(kind, name, mode, Number(e['size']), mtimeMs, 0);
      const digest = e['digest'];
      if (typeof digest !== 'string') return;
      d.setDigest(j, digest);
      const place = placed.get(digest);
      if (place !== undefined) {
        d.set(j, 5, groups.add(place[0], place[1]));
        d.set(j, 6, place[2]);
      }
    };
    if (r.kind === 'file') add(r['file'] as RawEntry);
    else for (const e of (r['entries'] as RawEntry[] | undefined) ?? []) add(e);
    return {
      name: r.name,
      kind: r.kind as TableRoot['kind'],
      ...(r.kind === 'dir' ? { mode: r.mode, mtimeMs: r.mtimeMs } : {}),
      dirs: [...dirs],
    };
  });
  return encodeTable({ groups: groups.list }, roots);
}

/** What a test puts in a pack: the meta and either table bytes or a manifest to make them. */
export type PackSpec =
  | { readonly meta: unknown; readonly table: Buffer }
  | { readonly meta: unknown; readonly manifest: unknown; readonly placed?: Placements };

export interface PackOptions {
  readonly magic?: string;
  readonly version?: number;
  /** false: leave out the end marker. */
  readonly end?: boolean;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * A pack in the documented format (pack.ts, version 3 unless `opts.version` says otherwise),
 * built by hand so tests can make broken ones. A string `spec` is the meta section as it is
 * (say, broken JSON), with an empty table.
 */
export function packOf(
  spec: PackSpec | string,
  blobs: readonly (readonly [string, Buffer])[],
  opts: PackOptions = {},
): Buffer {
  const parts: Buffer[] = [
    Buffer.from(opts.magic ?? 'CLYDEPK\n', 'latin1'),
    u32(opts.version ?? 3),
  ];
  const meta = Buffer.from(typeof spec === 'string' ? spec : JSON.stringify(spec.meta), 'utf8');
  const table =
    typeof spec === 'string'
      ? Buffer.alloc(0)
      : 'table' in spec
        ? spec.table
        : tableOf(spec.manifest, spec.placed);
  parts.push(u32(meta.length), meta, u32(table.length), table);
  for (const [digest, frame] of blobs) {
    const rec = Buffer.alloc(40);
    Buffer.from(digest, 'hex').copy(rec);
    rec.writeBigUInt64BE(BigInt(frame.length), 32);
    parts.push(rec, frame);
  }
  if (opts.end !== false) parts.push(Buffer.alloc(40));
  return Buffer.concat(parts);
}

/** A version 3 pack's meta and table, and the manifest the table describes (checked). */
export function packHeader(pack: Buffer): { meta: unknown; table: Buffer; manifest: Manifest } {
  const metaLen = pack.readUInt32BE(12);
  const meta: unknown = JSON.parse(pack.subarray(16, 16 + metaLen).toString('utf8'));
  const at = 16 + metaLen;
  const table = pack.subarray(at + 4, at + 4 + pack.readUInt32BE(at));
  return { meta, table, manifest: tableManifest(decodeTable(Buffer.from(table))).manifest };
}
