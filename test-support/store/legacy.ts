/**
 * Entries in the form stores wrote before artifacts became tables (table.ts): the artifact as
 * JSON, and where the grouped files live in a locator file beside the blobs. Tests turn a fresh
 * entry into that form to prove such stores are still read.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildLocator, locatorId, type Location } from '../../src/store/blobs.js';
import type { Manifest } from '../../src/store/manifest.js';
import { decodeTable, tableManifest } from '../../src/store/table.js';

/** The locator of `m` in its binary form (16-byte head, 40 bytes per group, 52 per file). */
export function encodeLocator(
  m: Manifest,
  locs: ReadonlyMap<string, Location>,
): Buffer | undefined {
  const file = buildLocator(m, locs);
  if (file === undefined) return undefined;
  const body = Buffer.alloc(16 + file.groups.length * 40 + file.files.length * 52);
  body.write('CLOC', 0, 'latin1');
  body.writeUInt32LE(2, 4);
  body.writeUInt32LE(file.groups.length, 8);
  body.writeUInt32LE(file.files.length, 12);
  let o = 16;
  for (const [group, groupSize] of file.groups) {
    body.write(group, o, 32, 'hex');
    body.writeDoubleLE(groupSize, o + 32);
    o += 40;
  }
  for (const [digest, gi, offset, size] of file.files) {
    body.write(digest, o, 32, 'hex');
    body.writeUInt32LE(gi, o + 32);
    body.writeDoubleLE(offset, o + 36);
    body.writeDoubleLE(size, o + 44);
    o += 52;
  }
  return body;
}

/**
 * Rewrites the entry in `entryDir` of the store at `store` in the earlier form; returns its
 * locator file (undefined when no file is grouped).
 */
export async function toLegacyEntry(store: string, entryDir: string): Promise<string | undefined> {
  const artifact = path.join(entryDir, 'artifact');
  const { manifest, locations } = tableManifest(decodeTable(await fs.readFile(artifact)));
  await fs.writeFile(artifact, JSON.stringify(manifest));
  const body = encodeLocator(manifest, locations);
  if (body === undefined) return undefined;
  const id = locatorId(manifest);
  const file = path.join(store, 'blobs', id.slice(0, 2), `${id}.loc`);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, body);
  return file;
}
