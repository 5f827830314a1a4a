/**
 * The basis of a save: the previous entry of the same package, whose stat cache and table let
 * the save skip files that did not change (issue 4, the 1%-changed save). Finding no basis, or
 * a damaged one, only makes the save read everything. The stat cache carries the digests and
 * the group locations, so the previous manifest is parsed only when there is no stat cache (its
 * table still lets the save skip writing content that is already grouped). The newest entry of
 * the package is found in the index (it holds package, platform, variant and createdAt), never by
 * reading every entry's meta.json.
 */
import { compareBytes } from '../util/bytes.js';
import type { BlobStore } from './blobs.js';
import type { Manifest } from './manifest.js';
import type { Basis } from './snapshot.js';
import { readStatCache } from './statcache.js';
import type { EntryMeta, SaveRequest } from './types.js';

/** What the index says of an entry: enough to pick the basis without reading any meta.json. */
export interface BasisCandidate {
  readonly key: string;
  readonly package: string;
  readonly platform: string;
  readonly variant: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

export async function loadBasis(
  storeRoot: string,
  blobs: BlobStore,
  req: SaveRequest,
  get: (key: string) => Promise<EntryMeta | undefined>,
  indexed: () => Promise<readonly BasisCandidate[]>,
  manifestOf: (key: string) => Promise<Manifest>,
): Promise<Basis | undefined> {
  try {
    let key: string | undefined;
    if (req.basis !== undefined && (await get(req.basis)) !== undefined) key = req.basis;
    if (key === undefined) {
      const same = (await indexed())
        .filter(
          (e) =>
            e.package === req.package &&
            e.platform === req.platform &&
            e.variant === req.variant &&
            e.key !== req.key,
        )
        .sort((a, b) => b.createdAt - a.createdAt || compareBytes(b.key, a.key));
      key = same[0]?.key;
    }
    if (key === undefined) return undefined;
    const stat = await readStatCache(storeRoot, key, req.roots);
    if (stat.usable) return { stat, locations: () => stat.locations() };
    const locations = blobs.locationsOf(await manifestOf(key));
    return { stat, locations: () => locations };
  } catch {
    return undefined;
  }
}
