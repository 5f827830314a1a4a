/**
 * The store lock: proper-lockfile's lock directory (`<root>/store.lock`), taken only around
 * index and entry commits and removals. A holder that dies leaves the directory behind; once its
 * mtime is older than `staleMs` (the holder refreshes it every staleMs/2 while alive) the next
 * taker removes it. Waiting is bounded: past `timeoutMs` the caller gets StoreError('lock
 * timeout ...'), which the run layer turns into a warning and a miss.
 */
import * as core from '@actions/core';
import lockfile from 'proper-lockfile';
import { StoreError } from '../errors.js';

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const DEFAULT_LOCK_STALE_MS = 15_000;

export interface LockSettings {
  /** The file the lock is named after (need not exist). */
  readonly target: string;
  /** The lock directory. */
  readonly lockPath: string;
  readonly timeoutMs: number;
  readonly staleMs: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn` holding the lock. */
export async function withLock<T>(s: LockSettings, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + s.timeoutMs;
  let release: (() => Promise<void>) | undefined;
  let wait = 10;
  while (release === undefined) {
    try {
      release = await lockfile.lock(s.target, {
        realpath: false,
        lockfilePath: s.lockPath,
        stale: s.staleMs,
        retries: 0,
        // The default throws from a timer, killing the process. A lock we could not keep fresh
        // (an event loop blocked for staleMs) is reported; the work under it is already atomic.
        onCompromised: (err) => core.warning(`clyde-cache: store lock compromised: ${err}`),
      });
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ELOCKED') {
        throw new StoreError(`cannot lock the store (${s.lockPath}): ${err}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new StoreError(
          `lock timeout: the store lock ${s.lockPath} stayed taken for ${s.timeoutMs} ms`,
        );
      }
      await sleep(Math.min(wait, left));
      wait = Math.min(wait * 2, 250);
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch((err: unknown) => core.debug(`clyde-cache: lock release: ${err}`));
  }
}
