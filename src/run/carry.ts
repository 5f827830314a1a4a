/**
 * What main hands post for an incremental runner-cache save (a layer: only the blobs its base
 * lacks). After a fallback from the runner cache, post saves a new entry that mostly holds what
 * was restored; main keeps, under RUNNER_TEMP, the names of the blobs of the full entry at the
 * bottom of what it restored (the base the layer will name), and where no store is kept the
 * downloaded packs and the stat cache of the restored files, which post makes an entry of its
 * step store (`LocalStore.adoptPacks`) so that its save reads only the files the build changed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { PackBase, PackFile } from '../store/index.js';
import { tempName } from '../util/fsx.js';
import { scratchRoot } from './common.js';

export interface Carry {
  /** The full entry a layer would name as its base (its key in the runner cache). */
  readonly base: string;
  /** The compressed bytes of its blobs. */
  readonly baseBytes: number;
  /** A file listing its blobs' names, one per line. */
  readonly blobs: string;
  /** Where no store is kept: the packs restored from, and the restored files' stat cache. */
  readonly packs?: readonly PackFile[];
  readonly rows?: string;
}

/** A layer larger than this fraction of its base's bytes is saved as a full entry instead. */
export const LAYER_MAX_FRACTION = 0.5;

/** Keeps what post needs; the packs are moved, not copied. */
export async function keepCarry(
  base: PackBase,
  adopt?: { packs: readonly PackFile[]; rows: Buffer },
): Promise<Carry> {
  const dir = tempName(scratchRoot(), 'carry');
  await fs.mkdir(dir, { recursive: true });
  const blobs = path.join(dir, 'base-blobs.txt');
  await fs.writeFile(blobs, base.blobs.join('\n'));
  const carry = { base: base.key, baseBytes: base.storedBytes, blobs };
  if (adopt === undefined) return carry;
  const rows = path.join(dir, 'rows.bin');
  await fs.writeFile(rows, adopt.rows);
  const packs: PackFile[] = [];
  for (const [i, p] of adopt.packs.entries()) {
    const file = path.join(dir, `pack-${i}`);
    await fs.rename(p.file, file);
    packs.push({ file, key: p.key });
  }
  return { ...carry, packs, rows };
}

/** The base's blob names. */
export async function carriedBlobs(carry: Carry): Promise<Set<string>> {
  const text = await fs.readFile(carry.blobs, 'utf8');
  return new Set(text.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l)));
}

/** Removes what main kept (post's last act). */
export async function dropCarry(carry: Carry | undefined): Promise<void> {
  if (carry === undefined) return;
  const dir = path.dirname(carry.blobs);
  if (path.dirname(dir) !== scratchRoot()) return;
  await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
