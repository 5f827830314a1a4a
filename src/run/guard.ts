/**
 * The last line of the error policy: an error nobody expected (a bug, a stream that errors with
 * no listener) is still a cache problem, so it becomes a warning and the step carries on as a
 * miss or a skipped save. Only configuration errors fail a step, and those are reported through
 * core.setFailed before this is reached.
 */
import * as core from '@actions/core';
import { errorMessage } from '../errors.js';

export async function guarded(step: string, fn: () => Promise<void>): Promise<void> {
  const bail = (err: unknown): void => {
    core.warning(
      `clyde-cache ${step}: unexpected error, continuing without the cache: ${errorMessage(err)}`,
    );
    if (err instanceof Error && err.stack) core.debug(err.stack);
    process.exit(process.exitCode ?? 0);
  };
  process.on('uncaughtException', bail);
  process.on('unhandledRejection', bail);
  try {
    await fn();
  } catch (err) {
    bail(err);
  }
}
