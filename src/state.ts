/**
 * What main hands to post: one versioned object in one state variable (STYLE.md habit 3).
 * Post never recomputes what main knew. Key manifests can be large (one hash per source file),
 * so they travel in files under RUNNER_TEMP and state carries their paths.
 */
import * as core from '@actions/core';
import type { Config } from './inputs.js';
import { configFromJson } from './inputs.js';
import type { OutputRoot } from './store/types.js';

export const STATE_NAME = 'clyde';
export const STATE_VERSION = 2;

export type Tier = 'local' | 'remote' | 'none';

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
  /** Path of a JSON file holding the key manifest. */
  readonly manifestFile?: string;
}

export interface MainState {
  readonly v: typeof STATE_VERSION;
  readonly config: Config;
  /** Empty when no key could be computed (then post saves nothing). */
  readonly packages: readonly PackageState[];
  /** Main's phase timings, so post's summary can show the whole job. */
  readonly timings: Readonly<Record<string, number>>;
}

export function saveState(state: MainState): void {
  core.saveState(STATE_NAME, JSON.stringify(state));
}

/** The state main left, or undefined when this step is not a post step of the same action. */
export function loadState(): MainState | undefined {
  const raw = core.getState(STATE_NAME);
  if (raw === '') return undefined;
  const parsed = JSON.parse(raw) as MainState;
  if (parsed.v !== STATE_VERSION) {
    throw new Error(`state version ${String(parsed.v)} is not ${STATE_VERSION}`);
  }
  return { ...parsed, config: configFromJson(parsed.config) };
}
