/**
 * The baseline action of `npm run bench -- action`: actions/cache's restoreImpl and saveImpl
 * (v4, Linux, the combined action's state provider) reduced to what they do on a runner, so the
 * benchmark and its test can run it beside this action's dist/. Benchmark support only: never
 * imported by src/.
 *
 * main: restoreCache(paths, key, restoreKeys); state CACHE_KEY and CACHE_RESULT; output
 * cache-hit. post: nothing on an exact hit, else saveCache(paths, key). As in actions/cache, a
 * restore error fails the step and a save error is a warning.
 */
import * as cache from '@actions/cache';
import * as core from '@actions/core';

const STATE_KEY = 'CACHE_KEY';
const STATE_MATCHED = 'CACHE_RESULT';

function inputList(name: string, required = false): string[] {
  return core
    .getInput(name, { required })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** actions/cache's own test (utils/actionUtils.ts): equal ignoring case, not byte equality. */
function isExactKeyMatch(key: string, matched: string | undefined): boolean {
  if (matched === undefined) return false;
  // eslint-disable-next-line no-restricted-syntax -- actions/cache's comparison, kept on purpose
  return matched.localeCompare(key, undefined, { sensitivity: 'accent' }) === 0;
}

export async function restoreRun(): Promise<void> {
  try {
    const key = core.getInput('key', { required: true });
    core.saveState(STATE_KEY, key);
    const restoreKeys = inputList('restore-keys');
    const paths = inputList('path', true);
    const matched = await cache.restoreCache(paths, key, restoreKeys, { lookupOnly: false }, false);
    if (!matched) {
      core.setOutput('cache-hit', 'false');
      core.info(`Cache not found for input keys: ${[key, ...restoreKeys].join(', ')}`);
      return;
    }
    core.saveState(STATE_MATCHED, matched);
    const exact = isExactKeyMatch(key, matched);
    core.setOutput('cache-hit', exact.toString());
    core.info(`Cache restored from key: ${matched}`);
  } catch (error) {
    core.setFailed((error as Error).message);
  }
}

export async function saveRun(): Promise<void> {
  try {
    const key = core.getState(STATE_KEY);
    if (!key) {
      core.warning('Key is not specified.');
      return;
    }
    if (isExactKeyMatch(key, core.getState(STATE_MATCHED) || undefined)) {
      core.info(`Cache hit occurred on the primary key ${key}, not saving cache.`);
      return;
    }
    const id = await cache.saveCache(inputList('path', true), key, {}, false);
    if (id !== -1) core.info(`Cache saved with key: ${key}`);
  } catch (error) {
    core.warning((error as Error).message);
  }
}
