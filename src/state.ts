/**
 * What main hands to post: one versioned object (STYLE.md habit 3). Post never recomputes what
 * main knew.
 *
 * The runner hands state to post as environment variables (`STATE_<name>`), and Linux refuses to
 * start a process with any one variable over 128 KiB (E2BIG, actions/runner#1733). The object
 * holds the whole configuration (a `config` input, a workspace file) and the key manifests (one
 * hash per source file), so it travels in a file under RUNNER_TEMP, and the state variable holds
 * only that file's path, size and sha256: a few hundred bytes whatever the inputs. Post checks
 * the size before reading and the hash before parsing; a missing or altered file is an error
 * that post reports as a warning, saving nothing.
 */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from './errors.js';
import type { Config } from './inputs.js';
import { configFromJson } from './inputs.js';
import type { Carry } from './run/carry.js';
import type { OutputRoot } from './store/types.js';
import { sha256 } from './util/bytes.js';
import { writeFileAtomic } from './util/fsx.js';

export const STATE_NAME = 'clyde';
export const STATE_VERSION = 3;

export type Tier = 'local' | 'bucket' | 'remote' | 'none';

/** One package as main left it. */
export interface PackageState {
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly roots: readonly OutputRoot[];
  readonly key: string;
  readonly prefix: string;
  readonly hash: string;
  readonly matchedKey: string;
  readonly tier: Tier;
  readonly exactHit: boolean;
  /** The key manifest, kept only for a package post will save (not after an exact hit). */
  readonly keyManifest?: unknown;
  /** After a fallback from the runner cache: what an incremental save builds on (carry.ts). */
  readonly carry?: Carry;
}

export interface MainState {
  readonly v: typeof STATE_VERSION;
  readonly config: Config;
  /** Empty when no key could be computed (then post saves nothing). */
  readonly packages: readonly PackageState[];
  /** Main's phase timings, so post's summary can show the whole job. */
  readonly timings: Readonly<Record<string, number>>;
  /**
   * Where no store is kept: main's step store, kept for post when it adopted a restored entry
   * that post builds on (carry.ts).
   */
  readonly stepStore?: string;
}

/** The state variable itself: where main's state file is and how to know it is intact. */
export type StateRef =
  | {
      readonly v: typeof STATE_VERSION;
      readonly file: string;
      readonly bytes: number;
      readonly sha256: string;
    }
  | { readonly v: typeof STATE_VERSION; readonly error: string };

/** Longest error text kept in the state variable (the variable must stay small). */
const MAX_ERROR_CHARS = 500;

/**
 * Write `state` to a file in `dir` (RUNNER_TEMP's scratch directory) and save a reference to it.
 * A file that cannot be written is a warning; the reference then says why, and post saves
 * nothing rather than falling back to reading inputs as the save sub-action does.
 */
export async function saveState(state: MainState, dir: string): Promise<void> {
  const text = JSON.stringify(state);
  const digest = sha256(text);
  const file = path.join(dir, `state-${digest}.json`);
  let ref: StateRef;
  try {
    await writeFileAtomic(file, text);
    ref = { v: STATE_VERSION, file, bytes: Buffer.byteLength(text), sha256: digest };
  } catch (err) {
    const reason = errorMessage(err).slice(0, MAX_ERROR_CHARS);
    core.warning(
      `The state for post could not be written to ${file} (${reason}); post will not save.`,
    );
    ref = { v: STATE_VERSION, error: reason };
  }
  core.saveState(STATE_NAME, JSON.stringify(ref));
}

/**
 * The state main left, or undefined when this step is not a post step of the same action.
 * Throws (a cache problem, not an input error) when the state cannot be trusted.
 */
export async function loadState(): Promise<MainState | undefined> {
  const raw = core.getState(STATE_NAME);
  if (raw === '') return undefined;
  const ref = parseRef(raw);
  if ('error' in ref) throw new Error(`main could not write its state: ${ref.error}`);
  let size: number;
  try {
    size = (await fs.stat(ref.file)).size;
  } catch (err) {
    throw new Error(`main's state file ${ref.file} cannot be read (${errorMessage(err)})`);
  }
  if (size !== ref.bytes) {
    throw new Error(
      `main's state file ${ref.file} holds ${size} bytes, not the ${ref.bytes} main wrote`,
    );
  }
  const data = await fs.readFile(ref.file);
  if (data.length !== ref.bytes || sha256(data) !== ref.sha256) {
    throw new Error(`main's state file ${ref.file} was changed after main wrote it`);
  }
  const parsed = JSON.parse(data.toString('utf8')) as MainState;
  if (parsed.v !== STATE_VERSION) {
    throw new Error(`state version ${String(parsed.v)} is not ${STATE_VERSION}`);
  }
  return { ...parsed, config: configFromJson(parsed.config) };
}

function parseRef(raw: string): StateRef {
  const ref = JSON.parse(raw) as Partial<Record<string, unknown>>;
  if (ref['v'] !== STATE_VERSION) {
    throw new Error(`state version ${String(ref['v'])} is not ${STATE_VERSION}`);
  }
  if (typeof ref['error'] === 'string') return { v: STATE_VERSION, error: ref['error'] };
  const { file, bytes, sha256: digest } = ref;
  if (
    typeof file !== 'string' ||
    !path.isAbsolute(file) ||
    typeof bytes !== 'number' ||
    !Number.isSafeInteger(bytes) ||
    bytes < 0 ||
    typeof digest !== 'string' ||
    !/^[0-9a-f]{64}$/.test(digest)
  ) {
    throw new Error('the state from main is malformed');
  }
  return { v: STATE_VERSION, file, bytes, sha256: digest };
}
