/**
 * A store client run as a child process by the crash and concurrency tests:
 *
 *   node child.js '{"op":"save","store":"...","work":"...","key":"k"}'
 *   node child.js '{"op":"mixed","store":"...","work":"...","worker":1,"iterations":12}'
 *
 * `save` writes the key's fixture files and saves them (the faults of faults.ts, set in the
 * environment, can stop it anywhere or fill its disk). `remove` removes keys.
 * `mixed` saves, restores (checking every byte) and removes at random, and prints a JSON
 * summary; content mismatches are errors, misses caused by concurrent removals are not.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { faultsFromEnv } from './faults.js';
import { contentFor, readContent, requestFor, sameContent, writeContent } from './fixtures.js';

interface Job {
  readonly op: 'save' | 'remove' | 'mixed';
  readonly store: string;
  readonly work: string;
  readonly key?: string;
  readonly keys?: string[];
  readonly worker?: number;
  readonly iterations?: number;
  readonly lockStaleMs?: number;
  /** save: the directory to save as it is (default: the key's fixture files, written first). */
  readonly dir?: string;
}

async function saveKey(store: LocalStore, work: string, key: string): Promise<boolean> {
  const dir = path.join(work, 'src', key, 'out');
  await writeContent(dir, contentFor(key));
  return (await store.save(requestFor(key, dir))).created;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const store = await LocalStore.open(job.store, {
    lockStaleMs: job.lockStaleMs ?? 2_000,
    faults: faultsFromEnv(),
  });
  if (job.op === 'save') {
    if (job.dir === undefined) await saveKey(store, job.work, job.key ?? 'k');
    else await store.save(requestFor(job.key ?? 'k', job.dir));
    return;
  }
  if (job.op === 'remove') {
    await store.removeMany(job.keys ?? []);
    return;
  }
  const summary = { saved: 0, restored: 0, misses: 0, removed: 0, errors: [] as string[] };
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
  for (let i = 0; i < (job.iterations ?? 10); i++) {
    const key = `w${job.worker ?? 0}-${i}`;
    try {
      if (await saveKey(store, job.work, key)) summary.saved++;
    } catch (err) {
      summary.errors.push(`save ${key}: ${err}`);
    }
    const listed = (await store.snapshot()).entries.map((e) => e.key);
    const target = pick(listed);
    if (target !== undefined) {
      const dest = path.join(job.work, 'restore', `${i}`, 'out');
      try {
        await store.restore(target, [{ name: 'out', absPath: dest }]);
        if (sameContent(await readContent(dest), contentFor(target))) summary.restored++;
        else summary.errors.push(`restore ${target}: content differs`);
      } catch (err) {
        // A concurrent removal makes a miss; anything else is an error.
        if ((err as Error).name === 'StoreError') summary.misses++;
        else summary.errors.push(`restore ${target}: ${err}`);
      }
      await fs.rm(path.dirname(dest), { recursive: true, force: true });
    }
    if (i % 3 === 2) {
      const victim = pick(listed);
      if (victim !== undefined) {
        try {
          summary.removed += (await store.removeMany([victim])).removed.length;
        } catch (err) {
          summary.errors.push(`remove ${victim}: ${err}`);
        }
      }
    }
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

// Exit explicitly: the store's worker pool may keep the event loop alive.
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : err}\n`);
    process.exit(1);
  },
);
