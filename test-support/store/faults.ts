/**
 * The store's fault injection for tests (src/store/types.ts `StoreFaults`), built from
 * environment variables so that a child process (test-support/store/child.ts) or a step run from
 * dist/ (which loads this module through `CLYDE_STORE_FAULTS_MODULE`, src/run/common.ts) can be
 * stopped or made to fail where a test wants. Imports nothing of src/ at run time.
 *
 * - `CLYDE_STORE_TEST_PAUSE_AT=<point>`: at that point the process writes its pid to the file
 *   named by `CLYDE_STORE_TEST_PAUSE_MARKER` and waits forever, so a test can SIGKILL it there.
 * - `CLYDE_STORE_TEST_RESUME_FILE=<file>`: with the pause, the process goes on once that file
 *   exists (a test acts on the store meanwhile, as a concurrent job would).
 * - `CLYDE_STORE_TEST_ENOSPC_AFTER=<n>`: blob writes after the n-th fail with ENOSPC, as on a
 *   full disk (for machines where a small tmpfs cannot be mounted, e.g. as a non-root user).
 * - `CLYDE_STORE_TEST_PRECLAIM=<digest>,...`: a save starts with the first 64 bits of these
 *   digests claimed, as if other content of the save shared them (a prefix collision).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PausePoint, StoreFaults } from '../../src/store/types.js';

export const PAUSE_AT_ENV = 'CLYDE_STORE_TEST_PAUSE_AT';
export const PAUSE_MARKER_ENV = 'CLYDE_STORE_TEST_PAUSE_MARKER';
export const RESUME_FILE_ENV = 'CLYDE_STORE_TEST_RESUME_FILE';
export const ENOSPC_AFTER_ENV = 'CLYDE_STORE_TEST_ENOSPC_AFTER';
export const PRECLAIM_ENV = 'CLYDE_STORE_TEST_PRECLAIM';

/** This module's file, for `CLYDE_STORE_FAULTS_MODULE`. */
export const FAULTS_MODULE_FILE = fileURLToPath(import.meta.url);

/** The faults the variables of `env` ask for (none when none is set). */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreFaults {
  const out: { -readonly [K in keyof StoreFaults]: StoreFaults[K] } = {};
  const at = env[PAUSE_AT_ENV];
  if (at !== undefined && at !== '') {
    const marker = env[PAUSE_MARKER_ENV];
    const resume = env[RESUME_FILE_ENV];
    out.pause = async (point: PausePoint): Promise<void> => {
      if (point !== at) return;
      if (marker !== undefined) writeFileSync(marker, String(process.pid));
      if (resume !== undefined) {
        while (!existsSync(resume)) await new Promise((r) => setTimeout(r, 20));
        return;
      }
      // A timer keeps the process alive; the promise never settles.
      setInterval(() => undefined, 60_000);
      await new Promise<never>(() => undefined);
    };
  }
  const enospc = env[ENOSPC_AFTER_ENV];
  if (enospc !== undefined && /^\d+$/.test(enospc)) out.enospcAfter = Number(enospc);
  const pre = (env[PRECLAIM_ENV] ?? '').split(',').filter((d) => /^[0-9a-f]{64}$/.test(d));
  if (pre.length > 0) out.preclaimed = pre;
  return out;
}

/** What a step run from dist/ loads (src/run/common.ts reads the `faults` export). */
export const faults: StoreFaults = faultsFromEnv();
