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
import { configComponent } from './config.js';
import { composeKey, keyEnvironment, NO_SOURCES, sanitizeKeyPart } from './compose.js';
import type { CacheKey, KeyInputs } from './types.js';

export type { CacheKey, KeyComponent, KeyInputs, KeyManifest } from './types.js';
export { LOCKFILE_NAMES } from './lockfiles.js';
export { canonicalConfig } from './config.js';
export {
  KEY_SCHEMA,
  fallbackOnlyKey,
  hashManifest,
  keyEnvironment,
  keyPrefix,
  sanitizeKeyPart,
} from './compose.js';
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
    keepOutsideLinks: inputs.keepOutsideLinks,
    config: inputs.config,
    lockfiles: inputs.lockfiles,
    sources: inputs.sources,
    excludePaths: inputs.excludePaths,
  });
}

/** Components whose value is also a part of the key string (written as sanitizeKeyPart does). */
const KEY_STRING_PARTS = new Set(['name', 'platform', 'variant']);

/**
 * Every component of the key in one collapsible group: kind, name, value, files, hash. A name,
 * platform or variant the key string writes differently (`linux-x64` as `linux_x64`) is shown
 * in both forms, so a hand-written restore key can be copied from the log.
 */
export function logKey(key: CacheKey): void {
  const kinds = new Set(key.manifest.components.map((c) => c.kind));
  const sources = key.manifest.components.find((c) => c.kind === 'sources');
  if (
    sources?.value === NO_SOURCES &&
    !['lockfile', 'env', 'toolchain', 'dep'].some((k) => kinds.has(k as typeof sources.kind)) &&
    key.manifest.components.find((c) => c.kind === 'config')?.hash === configComponent('').hash
  ) {
    core.warning(
      `The key ${key.key} depends on no file: 'sources' is none and no lockfile was found. ` +
        "Name the lockfiles in 'lockfiles' (or add 'config', 'env' or 'toolchain'), or the entry will never change.",
    );
  }
  core.startGroup(`Cache key ${key.key}`);
  try {
    core.info(`schema ${key.manifest.schema}, prefix ${key.prefix}`);
    for (const c of key.manifest.components) {
      const inKey =
        KEY_STRING_PARTS.has(c.kind) &&
        c.value !== undefined &&
        sanitizeKeyPart(c.value) !== c.value
          ? `in the key: ${sanitizeKeyPart(c.value)}`
          : undefined;
      const details = [c.value !== undefined ? JSON.stringify(c.value) : undefined, inKey];
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
