/** Pieces restore and save share: the key's inputs, opening the store, scratch space, errors. */
import * as core from '@actions/core';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage, isInputError } from '../errors.js';
import type { Config } from '../inputs.js';
import type { KeyInputs } from '../key/types.js';
import { pathToFileURL } from 'node:url';
import { LocalStore, type LocalStoreOptions } from '../store/index.js';
import type { OutputRoot, StoreFaults } from '../store/types.js';
import { tempName } from '../util/fsx.js';

export function keyInputs(config: Config): KeyInputs {
  return {
    workspace: config.workspace,
    name: config.name,
    version: config.version,
    variant: config.variant,
    platform: config.platform,
    sources: config.sources,
    paths: config.paths.map((p) => p.name),
    keepOutsideLinks: config.keepOutsideLinks,
    excludePaths: config.paths.map((p) => p.absPath),
    lockfiles: config.lockfiles,
    config: config.config,
    env: config.env,
    toolchain: config.toolchain,
  };
}

export function outputRoots(config: Config): OutputRoot[] {
  return config.paths.map((p) => ({ name: p.name, absPath: p.absPath }));
}

/** RUNNER_TEMP/clyde-cache (or the OS temp dir outside a runner). */
export function scratchRoot(): string {
  return path.join(process.env['RUNNER_TEMP'] ?? os.tmpdir(), 'clyde-cache');
}

export async function makeWorkDir(): Promise<string> {
  const dir = tempName(scratchRoot(), 'work');
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * A store under RUNNER_TEMP for this step only: `closeStore` removes it, unless `keepStepStore`
 * hands it to post (which opens it again, and removes it).
 */
const stepStores = new Set<LocalStore>();

async function openStepStore(options: LocalStoreOptions, kept?: string): Promise<LocalStore> {
  let store: LocalStore | undefined;
  if (kept !== undefined && path.dirname(kept) === scratchRoot()) {
    store = await LocalStore.open(kept, options).catch((err: unknown) => {
      core.info(`The store main kept could not be opened (${errorMessage(err)}): saving whole.`);
      return undefined;
    });
  }
  store ??= await LocalStore.open(tempName(scratchRoot(), 'step-store'), options);
  stepStores.add(store);
  return store;
}

/** Keeps a step store past `closeStore`: post opens it by its root. */
export function keepStepStore(store: LocalStore): string {
  stepStores.delete(store);
  return store.root;
}

/**
 * Tests only: the file of a module whose `faults` export (StoreFaults) the steps' store gets
 * (test-support/store/faults.ts), so an end-to-end test can stop a step run from dist/ at a
 * point of its save. Read here and nowhere else; unset in production, where it costs nothing.
 */
export const FAULTS_MODULE_ENV = 'CLYDE_STORE_FAULTS_MODULE';

async function storeOptions(): Promise<LocalStoreOptions> {
  const file = process.env[FAULTS_MODULE_ENV];
  if (file === undefined || file === '') return {};
  const mod = (await import(/* webpackIgnore: true */ pathToFileURL(file).href)) as {
    faults?: StoreFaults;
  };
  return mod.faults === undefined ? {} : { faults: mod.faults };
}

/**
 * The local store; with the `local` input off, a store for this step only (nothing is written
 * under local-cache-dir); and when the local store cannot be opened (unwritable directory, full
 * disk), a store under RUNNER_TEMP for this step, so the runner cache tier still works.
 */
export async function openStore(
  config: Config,
  notes: string[],
  keptStepStore?: string,
): Promise<LocalStore> {
  const store = await openEither(config, notes, keptStepStore);
  store.startWorkers();
  // The backend the workers report once they have started (a binary found but not loadable
  // leaves them on node:zlib), logged without waiting for them; nothing when they cannot start
  // (their jobs fail, each a warning).
  store.workerBackend().then(
    (backend) => core.info(`zstd: ${backend}`),
    () => undefined,
  );
  return store;
}

async function openEither(config: Config, notes: string[], kept?: string): Promise<LocalStore> {
  const options = await storeOptions();
  if (!config.local) {
    core.info(
      `Local store: off (the 'local' input${process.env['RUNNER_ENVIRONMENT'] === 'github-hosted' ? ', on a GitHub-hosted runner' : ''}); nothing is kept after this step.`,
    );
    return openStepStore(options, kept);
  }
  try {
    return await LocalStore.open(config.localCacheDir, options);
  } catch (err) {
    const fallback = path.join(scratchRoot(), 'job-store');
    const msg = `Local store at ${config.localCacheDir} could not be opened (${errorMessage(err)}); using a store for this job only.`;
    core.warning(msg);
    notes.push(msg);
    return LocalStore.open(fallback, options);
  }
}

/** Whether `store` lives for this step only (the `local` input is off). */
export function isStepStore(store: LocalStore): boolean {
  return stepStores.has(store);
}

/** Removes a store that lived for this step only; the local store stays. */
export async function closeStore(store: LocalStore | undefined): Promise<void> {
  if (store === undefined || !stepStores.delete(store)) return;
  await fs.rm(store.root, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * One error handler per phase (STYLE.md habit 4): configuration errors fail the step; every
 * other error is a cache problem, reported once as a warning and otherwise ignored.
 * Returns true when the step was failed.
 */
export function handlePhaseError(phase: string, err: unknown, notes?: string[]): boolean {
  if (isInputError(err)) {
    core.setFailed(errorMessage(err));
    return true;
  }
  const msg = `${phase}: ${errorMessage(err)}`;
  core.warning(msg);
  notes?.push(msg);
  return false;
}
