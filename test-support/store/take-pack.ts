/**
 * A downloaded pack taken into a store the one way the action takes it (run/restore.ts, for the
 * runner cache and the bucket alike): restored by `restorePack` (the pack checked whole, every
 * file verified as the workers write it, the outputs untouched on any failure), then made an
 * entry of the store by `adoptPacks`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { EntryMeta, LocalStore, OutputRoot, RestoreOptions } from '../../src/store/index.js';

export interface TakeOptions {
  /**
   * Where the entry is restored: by default `out` in a fresh directory beside the store's root,
   * removed afterwards.
   */
  readonly roots?: readonly OutputRoot[];
  /** The restore's options (the workspace, `keepOutsideLinks`). */
  readonly restore?: RestoreOptions;
}

/**
 * Restores the pack `file` of the entry `key` and adopts it into `store`; returns the entry
 * (the one the store held already, when it holds `key`). Throws what either refuses it with.
 */
export async function restoreAndAdopt(
  store: LocalStore,
  file: string,
  key: string,
  opts: TakeOptions = {},
): Promise<EntryMeta> {
  const scratch =
    opts.roots === undefined
      ? await fs.mkdtemp(path.join(path.dirname(store.root), 'take-'))
      : undefined;
  const roots = opts.roots ?? [{ name: 'out', absPath: path.join(scratch as string, 'out') }];
  const packs = [{ file, key }];
  try {
    const r = await store.restorePack(packs, roots, async () => opts.restore ?? {});
    const { entry } = await store.adoptPacks(packs, roots, r.rows, { scanned: r.scanned });
    return entry;
  } finally {
    // (A restored directory may be read-only: the sandbox's cleanup takes what this cannot.)
    if (scratch !== undefined)
      await fs.rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}
