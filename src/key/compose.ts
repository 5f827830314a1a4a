/**
 * Putting a key together from its components, shared by computeKey (one key) and
 * computePackageKeys (one per package of a workspace file, over one SourceIndex).
 *
 * Component order (fixed): salt, name, version, platform, variant, paths, config, env:* (by name),
 * toolchain:* (by command), lockfile:* (by path), dep:* (by package name), sources.
 */
import { compareBytes, sha256 } from '../util/bytes.js';
import { displayValue } from './canonical.js';
import { configComponent, flattenConfig } from './config.js';
import { envComponents, toolchainComponents } from './environment.js';
import { lockfileComponents } from './lockfiles.js';
import { SourceIndex, sourcesDigest, type SourceOrigin } from './sources.js';
import type { CacheKey, KeyComponent, KeyInputs, KeyManifest } from './types.js';

/** Version of the key schema; part of the salt, so bumping it changes every key. */
export const KEY_SCHEMA = 3;
export const SALT = `clyde-key-v${KEY_SCHEMA}`;
/** Longest sanitised name/platform/variant in the key string (keys are capped at 512 chars). */
const MAX_PART_CHARS = 100;

/** What one key is made of, beyond what all keys of a run share. */
export interface KeySpec {
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  /**
   * The cached paths as configured (normalised names: posix separators, no './', no trailing
   * '/'): two steps caching different paths never share an entry, as in actions/cache, whose
   * cache version hashes its paths.
   */
  readonly paths: readonly string[];
  /** The `keep-outside-links` input: part of the paths component when true. */
  readonly keepOutsideLinks?: boolean;
  readonly config: string;
  readonly lockfiles: readonly string[] | 'auto';
  /** Globs ([] for the default), or 'none': the key then covers no source file. */
  readonly sources: readonly string[] | 'none';
  /** Absolute, or relative to the workspace. */
  readonly excludePaths: readonly string[];
  /** Keys of direct dependencies (packages), by package name. */
  readonly deps?: ReadonlyMap<string, CacheKey>;
}

/** Shared by every key of a run: computed once. */
export interface KeyEnvironment {
  readonly index: SourceIndex;
  readonly platform: string;
  /** env:* then toolchain:* components. */
  readonly environment: readonly KeyComponent[];
}

/** What every key of one run shares: the source index, platform, env and toolchain. */
export async function keyEnvironment(
  workspace: string,
  inputs: Pick<
    KeyInputs,
    'platform' | 'env' | 'envValues' | 'toolchain' | 'toolchainTimeoutMs' | 'useGit'
  >,
): Promise<KeyEnvironment> {
  const env = envComponents(inputs.env ?? [], inputs.envValues ?? process.env);
  // git and the toolchain commands run side by side; either may fail the whole key.
  const [index, toolchain] = await Promise.all([
    SourceIndex.open(workspace, inputs.useGit ?? true),
    toolchainComponents(inputs.toolchain ?? [], workspace, inputs.toolchainTimeoutMs),
  ]);
  return { index, platform: inputs.platform, environment: [...env, ...toolchain] };
}

export async function composeKey(env: KeyEnvironment, spec: KeySpec): Promise<CacheKey> {
  // One after the other: an input error in one must not leave the other running.
  const lockfiles = await lockfileComponents(env.index.workspace, spec.lockfiles);
  const list =
    spec.sources === 'none'
      ? undefined
      : await env.index.list(spec.sources, spec.excludePaths, new Set(lockfiles.paths));
  const sourceFiles = list ? await env.index.hash(list.paths) : [];
  // fromEntries defines own properties, so a file named `__proto__` is kept like any other.
  // Property order is insertion order (byte order) except for integer-like names, which JS
  // always puts first: sort Object.keys(files) with sortBytes before relying on the order.
  const files: Record<string, string> = Object.fromEntries(sourceFiles.map((f) => [f.path, f.id]));
  const deps = [...(spec.deps ?? new Map<string, CacheKey>()).entries()].sort(([a], [b]) =>
    compareBytes(a, b),
  );
  const components: KeyComponent[] = [
    textComponent('salt', 'salt', SALT),
    textComponent('name', 'name', spec.name),
    textComponent('version', 'version', spec.version),
    textComponent('platform', 'platform', env.platform),
    textComponent('variant', 'variant', spec.variant),
    pathsComponent(spec.paths, spec.keepOutsideLinks),
    configComponent(spec.config),
    ...env.environment,
    ...lockfiles.components,
    ...deps.map(([name, key]): KeyComponent => ({
      kind: 'dep',
      name: `dep:${name}`,
      hash: key.hash,
      value: key.key,
    })),
    {
      kind: 'sources',
      name: 'sources',
      hash: sourcesDigest(env.index.format, sourceFiles),
      value:
        list && spec.sources !== 'none' ? describeSources(list.origin, spec.sources) : NO_SOURCES,
      fileCount: sourceFiles.length,
    },
  ];
  const config = flattenConfig(spec.config);
  const manifest: KeyManifest = {
    schema: KEY_SCHEMA,
    components,
    files,
    ...(config !== undefined ? { config } : {}),
    ...(Object.keys(lockfiles.dependencies).length > 0
      ? { dependencies: lockfiles.dependencies }
      : {}),
  };
  const hash = hashManifest(manifest);
  const prefix = keyPrefix({ name: spec.name, platform: env.platform, variant: spec.variant });
  return { key: prefix + hash, prefix, hash, manifest };
}

/** The sources component's value with `sources: none`. */
export const NO_SOURCES = 'none (sources: none)';

/**
 * `clyde-<name>-<platform>-<variant>-`: the key string's prefix, the parts as sanitizeKeyPart
 * writes them (`mocha-deps` is `mocha_deps`, `linux-x64` is `linux_x64`).
 */
export function keyPrefix(parts: {
  readonly name: string;
  readonly platform: string;
  readonly variant: string;
}): string {
  return `clyde-${sanitizeKeyPart(parts.name)}-${sanitizeKeyPart(parts.platform)}-${sanitizeKeyPart(parts.variant)}-`;
}

/**
 * Where a failed job's outputs are saved (`save: always`): the same prefix, so a later run's
 * fallback can restore them, but a hash no run computes, so they are never an exact hit (and
 * never skip the build that would have made them whole). Still a well-formed clyde key for gc.
 */
export function fallbackOnlyKey(prefix: string, hash: string): { key: string; hash: string } {
  const derived = sha256(`${SALT}\nfailed-job\n${hash}`);
  return { key: prefix + derived, hash: derived };
}

/**
 * The cached paths, in byte order without repeats; the value lists them for the log. Keeping
 * symlinks that leave the workspace changes what an entry holds, so it is part of this component
 * when asked for (keys without it are unchanged).
 */
function pathsComponent(paths: readonly string[], keepOutsideLinks = false): KeyComponent {
  const sorted = [...new Set(paths)].sort(compareBytes);
  const value = sorted.join(', ');
  return keepOutsideLinks
    ? {
        kind: 'paths',
        name: 'paths',
        hash: sha256(JSON.stringify({ paths: sorted, keepOutsideLinks })),
        value: `${value} (links leaving the workspace kept)`,
      }
    : { kind: 'paths', name: 'paths', hash: sha256(JSON.stringify(sorted)), value };
}

/**
 * The key hash of a manifest: sha256 of JSON `{"schema":2,"components":[[kind,name,hash],...]}`
 * in the manifest's order. Display values, file counts, the files map, config values and
 * dependency versions are not hashed (their components cover them).
 */
export function hashManifest(manifest: KeyManifest): string {
  return sha256(
    JSON.stringify({
      schema: manifest.schema,
      components: manifest.components.map((c) => [c.kind, c.name, c.hash]),
    }),
  );
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
