/**
 * Cache key v1: sha256 over a canonical manifest of components in a fixed order (salt, name,
 * version, platform, variant, config, each lockfile, sources). Pure apart from reading files
 * (and running `git ls-files` for the default sources).
 *
 * Key string: `clyde-<name>-<platform>-<variant>-<hash>`, the three parts sanitised; `prefix`
 * is the same without the hash. The manifest keeps every component and every source file's
 * hash so that a miss can be explained by diffing two manifests.
 */
import * as path from 'node:path';
import * as core from '@actions/core';
import { sha256 } from '../util/bytes.js';
import { displayValue } from './canonical.js';
import { configComponent } from './config.js';
import { lockfileComponents } from './lockfiles.js';
import { hashSources, listSources, sourcesDigest, type SourceOrigin } from './sources.js';
import type { CacheKey, KeyComponent, KeyInputs, KeyManifest } from './types.js';

export type { CacheKey, KeyComponent, KeyInputs, KeyManifest } from './types.js';
export { LOCKFILE_NAMES } from './lockfiles.js';
export { canonicalConfig } from './config.js';

/** Version of the key schema; part of the salt, so bumping it changes every key. */
export const KEY_SCHEMA = 1;
const SALT = `clyde-key-v${KEY_SCHEMA}`;
/** Longest sanitised name/platform/variant in the key string (keys are capped at 512 chars). */
const MAX_PART_CHARS = 100;

export async function computeKey(inputs: KeyInputs): Promise<CacheKey> {
  const workspace = path.resolve(inputs.workspace);
  // One after the other: an input error in one must not leave the other running.
  const lockfiles = await lockfileComponents(workspace, inputs.lockfiles);
  const list = await listSources(workspace, inputs.sources, inputs.excludePaths);
  const sourceFiles = hashSources(workspace, list.paths);

  // fromEntries defines own properties, so a file named `__proto__` is kept like any other.
  // Property order is insertion order (byte order) except for integer-like names, which JS
  // always puts first: sort Object.keys(files) with sortBytes before relying on the order.
  const files: Record<string, string> = Object.fromEntries(
    sourceFiles.map((f) => [f.path, f.sha256]),
  );

  const components: KeyComponent[] = [
    textComponent('salt', 'salt', SALT),
    textComponent('name', 'name', inputs.name),
    textComponent('version', 'version', inputs.version),
    textComponent('platform', 'platform', inputs.platform),
    textComponent('variant', 'variant', inputs.variant),
    configComponent(inputs.config),
    ...lockfiles,
    {
      kind: 'sources',
      name: 'sources',
      hash: sourcesDigest(sourceFiles),
      value: describeSources(list.origin, inputs.sources),
      fileCount: sourceFiles.length,
    },
  ];
  const manifest: KeyManifest = { schema: KEY_SCHEMA, components, files };
  const hash = hashManifest(manifest);
  const prefix = `clyde-${sanitizeKeyPart(inputs.name)}-${sanitizeKeyPart(inputs.platform)}-${sanitizeKeyPart(inputs.variant)}-`;
  return { key: prefix + hash, prefix, hash, manifest };
}

/**
 * The key hash of a manifest: sha256 of JSON `{"schema":1,"components":[[kind,name,hash],...]}`
 * in the manifest's order. Display values and file counts are not hashed (they are derived);
 * the files map is covered by the sources component.
 */
export function hashManifest(manifest: KeyManifest): string {
  return sha256(
    JSON.stringify({
      schema: manifest.schema,
      components: manifest.components.map((c) => [c.kind, c.name, c.hash]),
    }),
  );
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

/**
 * A name/platform/variant as it may appear in the key string: `[A-Za-z0-9._]` kept, every
 * other character (per code point) becomes `_`, case kept, never empty, at most 100 chars.
 * Since `-` is replaced, the parts of a key string never run into each other.
 */
export function sanitizeKeyPart(s: string): string {
  const out = Array.from(s, (ch) => (/^[A-Za-z0-9._]$/.test(ch) ? ch : '_')).join('');
  if (out === '') return '_';
  return out.length > MAX_PART_CHARS ? out.slice(0, MAX_PART_CHARS) : out;
}

function textComponent(kind: KeyComponent['kind'], name: string, value: string): KeyComponent {
  return { kind, name, hash: sha256(value), value: displayValue(value) };
}

function describeSources(origin: SourceOrigin, patterns: readonly string[]): string {
  switch (origin) {
    case 'git':
      return 'files tracked by git';
    case 'walk':
      return 'every file under the workspace';
    case 'glob':
      return displayValue(patterns.join(', '));
  }
}
