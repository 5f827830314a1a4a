/**
 * What `LocalStore.open` settles before anything is read: the store's layout version (an older
 * store is moved aside to old-layout/, which prune removes: maintenance.ts `sweepOldLayout`),
 * and the leftovers in tmp/ of processes that are gone.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { compareBytes } from '../util/bytes.js';
import { exists, rename, tempName, writeFileAtomic } from '../util/fsx.js';
import { META, NOT_ENTRIES, OLD_LAYOUT, subdirs, type StoreContext } from './entries.js';
import { withLock } from './lock.js';

/**
 * The store's layout, written to `<root>/layout`. 2: artifacts are tables and nothing else (no
 * JSON artifacts, no locator files, packs carry the table); a store without the file, or with
 * an older number, is moved aside on open.
 */
export const LAYOUT_VERSION = 2;
const LAYOUT = 'layout';
/** Top-level names an older layout may have used (besides its package directories). */
const OLD_LAYOUT_NAMES = new Set([
  'index.bin',
  'index.json',
  'access.journal',
  'stats.json',
  'blobs',
  'markers',
  'unpacked',
  'statcache',
]);
/** Leftovers in tmp/ without a pid in their name are removed after this long. */
const TMP_MAX_AGE_MS = 60 * 60 * 1000;
/** Leftovers of a live pid are kept this long (the pid may have been reused meanwhile). */
const TMP_LIVE_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** tempName(): `<hint>-<pid>-<12 hex>`; the worker pool's blob writes: `blob-<pid>-<n>-<n>`. */
const TMP_PID = [/-(\d+)-[0-9a-f]{12}$/, /^blob-(\d+)-\d+-\d+$/];

/**
 * Makes sure the store is of LAYOUT_VERSION. A store without a layout file (or with an older
 * number) that holds anything of a store is of an older layout: under the lock, its files move
 * to old-layout/ (one rename each), which is said once, as an info line; the store is then
 * empty, and `sweepOldLayout` (prune) removes them. A newer layout is a StoreError (a warning
 * and a miss): this version neither reads nor moves it.
 */
export async function checkLayout(ctx: StoreContext): Promise<void> {
  const file = path.join(ctx.root, LAYOUT);
  const read = async (): Promise<number | undefined> => {
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    return /^\d{1,9}\n?$/.test(text) ? Number(text) : 0;
  };
  if ((await read()) === LAYOUT_VERSION) return;
  await withLock(ctx.lock, async () => {
    const found = await read();
    if (found === LAYOUT_VERSION) return;
    if (found !== undefined && found > LAYOUT_VERSION) {
      throw new StoreError(
        `the local store ${ctx.root} has layout ${found}, written by a newer clyde-cache; this one reads layout ${LAYOUT_VERSION}`,
      );
    }
    const old = await oldLayoutNames(ctx.root);
    if (old.length > 0) {
      const aside = tempName(path.join(ctx.root, OLD_LAYOUT), `layout-${found ?? 1}`);
      await fs.mkdir(aside, { recursive: true });
      for (const name of old) await rename(path.join(ctx.root, name), path.join(aside, name));
      core.info(
        `clyde-cache: the local store ${ctx.root} was written by an earlier clyde-cache (layout ${found ?? 1}, this one writes ${LAYOUT_VERSION}); starting it empty, its old files are removed by the next prune`,
      );
    }
    await writeFileAtomic(file, `${LAYOUT_VERSION}\n`, ctx.tmpDir);
  });
}

/** The top-level names that belong to a store of an older layout (its own names, entries). */
async function oldLayoutNames(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(root, { withFileTypes: true })) {
    if (OLD_LAYOUT_NAMES.has(d.name)) out.push(d.name);
    else if (d.isDirectory() && !NOT_ENTRIES.has(d.name) && !d.name.endsWith('.lock')) {
      if (await holdsEntry(path.join(root, d.name))) out.push(d.name);
    }
  }
  return out.sort(compareBytes);
}

/** Whether `dir` (a top-level directory) holds an entry: `<version>/<hash>/meta.json`. */
async function holdsEntry(dir: string): Promise<boolean> {
  for (const ver of await subdirs(dir)) {
    for (const hash of await subdirs(path.join(dir, ver))) {
      if (await exists(path.join(dir, ver, hash, META))) return true;
    }
  }
  return false;
}

/**
 * Removes what dead processes left in tmp/: names carrying a pid (tempName) go when that
 * process is gone; others, and those of a pid that may since have been reused, by age.
 */
export async function cleanTmp(tmpDir: string): Promise<void> {
  const now = Date.now();
  for (const name of await fs.readdir(tmpDir)) {
    const p = path.join(tmpDir, name);
    try {
      const pid = TMP_PID.map((re) => re.exec(name)?.[1]).find((m) => m !== undefined);
      const age = now - (await fs.lstat(p)).mtimeMs;
      const stale =
        pid === undefined
          ? age > TMP_MAX_AGE_MS
          : !isAlive(Number(pid)) || age > TMP_LIVE_MAX_AGE_MS;
      if (stale) await fs.rm(p, { recursive: true, force: true });
    } catch {
      // gone already
    }
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
