/**
 * Cache key v3: sha256 over a canonical manifest of components in a fixed order (salt, name,
 * version, platform, variant, paths, config, env:*, toolchain:*, each lockfile, dep:*, sources; see
 * compose.ts). Pure apart from reading files, asking git for its index, and running the
 * toolchain commands.
 *
 * Key string: `clyde-<name>-<platform>-<variant>-<hash>`, the three parts sanitised; `prefix`
 * is the same without the hash. The manifest keeps every component, every source file's blob
 * id, the flattened config and the resolved dependency versions, so that a miss can be
 * explained by diffing two manifests (explain.ts).
 */
import * as path from 'node:path';
import * as core from '@actions/core';
import { composeKey, keyEnvironment } from './compose.js';
import type { CacheKey, KeyInputs } from './types.js';

export type { CacheKey, KeyComponent, KeyInputs, KeyManifest } from './types.js';
export { LOCKFILE_NAMES } from './lockfiles.js';
export { canonicalConfig } from './config.js';
export { KEY_SCHEMA, hashManifest, keyEnvironment, sanitizeKeyPart } from './compose.js';
export {
  computePackageKeys,
  parseWorkspace,
  readWorkspaceFile,
  type PackageKey,
  type PackageSpec,
  type WorkspaceSpec,
  type CommonKeyInputs,
} from './packages.js';
export {
  explain,
  formatExplanation,
  asKeyManifest,
  changedSources,
  type Explanation,
  type SourceChanges,
} from './explain.js';

export async function computeKey(inputs: KeyInputs): Promise<CacheKey> {
  const workspace = path.resolve(inputs.workspace);
  const env = await keyEnvironment(workspace, inputs);
  return composeKey(env, {
    name: inputs.name,
    version: inputs.version,
    variant: inputs.variant,
    paths: inputs.paths,
    config: inputs.config,
    lockfiles: inputs.lockfiles,
    sources: inputs.sources,
    excludePaths: inputs.excludePaths,
  });
}

/** Every component of the key in one collapsible group: kind, name, value, files, hash. */
export function logKey(key: CacheKey): void {
  core.startGroup(`Cache key ${key.key}`);
  try {
    core.info(`schema ${key.manifest.schema}, prefix ${key.prefix}`);
    for (const c of key.manifest.components) {
      const details = [c.value !== undefined ? JSON.stringify(c.value) : undefined];
      if (c.fileCount !== undefined) {
        details.push(`${c.fileCount} file${c.fileCount === 1 ? '' : 's'}`);
      }
      const shown = details.filter((d) => d !== undefined).join(', ');
      core.info(`${c.kind.padEnd(9)}${c.name}  ${c.hash}${shown !== '' ? `  (${shown})` : ''}`);
    }
  } finally {
    core.endGroup();
  }
}
