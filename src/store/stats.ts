/** Named markers (`<root>/markers/<name>`, e.g. the last prune's time): small JSON files written atomically. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';

const MARKER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function markerPath(dir: string, name: string): string {
  if (!MARKER_NAME.test(name)) {
    throw new StoreError(`marker name must match ${MARKER_NAME}, got ${JSON.stringify(name)}`);
  }
  return path.join(dir, name);
}

export async function readMarker(dir: string, name: string): Promise<number | undefined> {
  try {
    const raw: unknown = JSON.parse(await fs.readFile(markerPath(dir, name), 'utf8'));
    const at = (raw as Record<string, unknown> | null)?.['at'];
    return typeof at === 'number' && Number.isFinite(at) && at >= 0 ? at : undefined;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    return undefined;
  }
}

export async function writeMarker(
  dir: string,
  tmpDir: string,
  name: string,
  epochMs: number,
): Promise<void> {
  if (!Number.isFinite(epochMs) || epochMs < 0) throw new StoreError(`bad marker time ${epochMs}`);
  await writeFileAtomic(markerPath(dir, name), `${JSON.stringify({ at: epochMs })}\n`, tmpDir);
}
