/**
 * Main's state reaches post the way the runner hands it over: core.saveState writes GITHUB_STATE,
 * the runner turns each entry into a STATE_<name> variable of post's environment, where Linux
 * refuses any one variable over 128 KiB. The state variable must stay small whatever the inputs;
 * the object itself lives in a file that post checks before trusting.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isInputError } from '../src/errors.js';
import { readConfig } from '../src/inputs.js';
import { loadState, saveState, STATE_NAME, STATE_VERSION, type MainState } from '../src/state.js';
import { ENV_STRING_LIMIT_BYTES, parseFileCommand } from '../test-support/runner.js';
import { captureStdout } from './key/helpers.js';

let root: string;
let scratch: string;
const saved: Record<string, string | undefined> = {};

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-state-'));
  scratch = path.join(root, 'runner-temp', 'clyde-cache');
  for (const name of ['GITHUB_STATE', `STATE_${STATE_NAME}`]) saved[name] = process.env[name];
  // The runner creates an empty file per step.
  process.env['GITHUB_STATE'] = path.join(root, 'state-file-command');
  await fs.writeFile(process.env['GITHUB_STATE'], '');
  Reflect.deleteProperty(process.env, `STATE_${STATE_NAME}`);
});

afterEach(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
  await fs.rm(root, { recursive: true, force: true });
});

/** What the runner does between main and post: GITHUB_STATE entries become STATE_ variables. */
async function handToPost(): Promise<string> {
  const state = parseFileCommand(await fs.readFile(process.env['GITHUB_STATE']!, 'utf8'));
  const value = state[STATE_NAME] ?? '';
  process.env[`STATE_${STATE_NAME}`] = value;
  return value;
}

/** A state as large as a user can make it: a big `config` input, a big workspace file. */
function bigState(): MainState {
  const lines = Array.from({ length: 8000 }, (_, i) => `"flag-${i}": "value \\"${i}\\""`);
  const config = readConfig(
    'restore',
    (name) => ({ path: 'out', config: lines.join('\n') })[name] ?? '',
    { GITHUB_WORKSPACE: path.join(root, 'ws'), HOME: root },
  );
  const files = Object.fromEntries(
    Array.from({ length: 5000 }, (_, i) => [`src/f${i}.c`, 'ab'.repeat(20)]),
  );
  return {
    v: STATE_VERSION,
    config,
    packages: [
      {
        name: 'demo',
        version: 'unversioned',
        variant: 'default',
        roots: config.paths,
        key: 'clyde-demo-linux_x64-default-' + 'a'.repeat(64),
        prefix: 'clyde-demo-linux_x64-default-',
        hash: 'a'.repeat(64),
        matchedKey: '',
        tier: 'none',
        exactHit: false,
        keyManifest: { files },
      },
    ],
    timings: { key: 12 },
  };
}

async function loadError(): Promise<Error> {
  const err = await loadState().then(
    () => new Error('loadState succeeded'),
    (e: unknown) => e as Error,
  );
  expect(isInputError(err)).toBe(false);
  return err;
}

describe('saveState / loadState', () => {
  it('keeps the state variable small whatever the inputs, and post gets the whole state', async () => {
    const state = bigState();
    expect(JSON.stringify(state).length).toBeGreaterThan(2 * ENV_STRING_LIMIT_BYTES);
    await saveState(state, scratch);
    const variable = await handToPost();
    expect(Buffer.byteLength(variable)).toBeLessThan(1024);
    expect(await loadState()).toEqual(state);
  });

  it('is undefined when main left no state (the save sub-action)', async () => {
    expect(await loadState()).toBeUndefined();
  });

  it.each([
    ['missing', (f: string) => fs.rm(f), /cannot be read/],
    ['truncated', (f: string) => fs.truncate(f, 10), /holds 10 bytes/],
    [
      'altered in place',
      async (f: string) => {
        const text = await fs.readFile(f, 'utf8');
        await fs.writeFile(f, text.replace('flag-1', 'flag-2')); // same size
      },
      /was changed after main wrote it/,
    ],
  ])('refuses a state file that is %s (an error, not a crash)', async (_label, damage, message) => {
    await saveState(bigState(), scratch);
    const variable = JSON.parse(await handToPost()) as { file: string };
    await damage(variable.file);
    expect((await loadError()).message).toMatch(message);
  });

  it('warns when the state file cannot be written, and post then refuses to save', async () => {
    const blocker = path.join(root, 'a-file');
    await fs.writeFile(blocker, '');
    const out = await captureStdout(() => saveState(bigState(), path.join(blocker, 'scratch')));
    expect(out).toMatch(/::warning::The state for post could not be written/);
    const variable = await handToPost();
    expect(Buffer.byteLength(variable)).toBeLessThan(1024);
    expect((await loadError()).message).toMatch(/main could not write its state/);
  });

  it('refuses a state variable from another version', async () => {
    process.env[`STATE_${STATE_NAME}`] = JSON.stringify({ v: 2, config: {}, packages: [] });
    expect((await loadError()).message).toMatch(/state version 2 is not 3/);
  });
});
