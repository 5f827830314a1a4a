/**
 * What main hands post for an incremental runner-cache save (a layer: only the blobs its base
 * lacks). After a fallback from the runner cache, post saves a new entry that mostly holds what
 * was restored; main keeps, under RUNNER_TEMP, the names of the blobs of the full entry at the
 * bottom of what it restored (the base the layer will name). Where no store is kept, main also
 * makes the restored entry an entry of its step store (`LocalStore.adoptPacks`, from the scan
 * its restore made), its blobs read in place from the downloaded packs, and keeps that store,
 * the packs and where each blob lies in them (`lent`): post opens the store, lends it the
 * frames again, and its save reads only the files the build changed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BLOB_NAME, type LentFrame, type PackBase, type PackFile } from '../store/index.js';
import { tempName } from '../util/fsx.js';
import { scratchRoot } from './common.js';

export interface Carry {
  /** The full entry a layer would name as its base (its key in the runner cache). */
  readonly base: string;
  /** The compressed bytes of its blobs. */
  readonly baseBytes: number;
  /** A file listing its blobs' names, one per line. */
  readonly blobs: string;
  /** Where no store is kept: the packs restored from, ... */
  readonly packs?: readonly PackFile[];
  /** ... and a file saying where in them each blob of the adopted entry lies (JSON). */
  readonly lent?: string;
}

/** A layer larger than this fraction of its base's bytes is saved as a full entry instead. */
export const LAYER_MAX_FRACTION = 0.5;

/** The lent file: each frame as [blob name, index in `packs`, offset, length]. */
interface LentFile {
  readonly frames: [string, number, number, number][];
}

/**
 * Keeps what post needs; the packs are moved, not copied, and `adopted.frames` (which lie in
 * `adopted.packs` as main downloaded them) are written against the moved packs.
 */
export async function keepCarry(
  base: PackBase,
  adopted?: { packs: readonly PackFile[]; frames: ReadonlyMap<string, LentFrame> },
): Promise<Carry> {
  const dir = tempName(scratchRoot(), 'carry');
  await fs.mkdir(dir, { recursive: true });
  const blobs = path.join(dir, 'base-blobs.txt');
  await fs.writeFile(blobs, base.blobs.join('\n'));
  const carry = { base: base.key, baseBytes: base.storedBytes, blobs };
  if (adopted === undefined) return carry;
  const index = new Map(adopted.packs.map((p, i) => [p.file, i]));
  const file: LentFile = { frames: [] };
  for (const [name, f] of adopted.frames) {
    const i = index.get(f.file);
    if (i !== undefined) file.frames.push([name, i, f.offset, f.length]);
  }
  const lent = path.join(dir, 'lent.json');
  await fs.writeFile(lent, JSON.stringify(file));
  const packs: PackFile[] = [];
  for (const [i, p] of adopted.packs.entries()) {
    const moved = path.join(dir, `pack-${i}`);
    await fs.rename(p.file, moved);
    packs.push({ file: moved, key: p.key });
  }
  return { ...carry, packs, lent };
}

/** The base's blob names. */
export async function carriedBlobs(carry: Carry): Promise<Set<string>> {
  const text = await fs.readFile(carry.blobs, 'utf8');
  return new Set(text.split('\n').filter((l) => BLOB_NAME.test(l)));
}

const whole = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;

/** The frames main adopted, as its `lent` file places them in the carried `packs`. */
export async function carriedFrames(
  lent: string,
  packs: readonly PackFile[],
): Promise<ReadonlyMap<string, LentFrame>> {
  const { frames } = JSON.parse(await fs.readFile(lent, 'utf8')) as LentFile;
  const out = new Map<string, LentFrame>();
  for (const [name, i, offset, length] of frames) {
    const pack = packs[i];
    if (pack === undefined || !BLOB_NAME.test(name) || !whole(offset) || !whole(length)) {
      throw new Error('lent.json is malformed');
    }
    out.set(name, { file: pack.file, offset, length });
  }
  return out;
}

/** Removes what main kept (post's last act). */
export async function dropCarry(carry: Carry | undefined): Promise<void> {
  if (carry === undefined) return;
  const dir = path.dirname(carry.blobs);
  if (path.dirname(dir) !== scratchRoot()) return;
  await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
