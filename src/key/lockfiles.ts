/**
 * Lockfile components: one `lockfile:<relpath>` component per lockfile. Where the format is
 * one we read (lockfile-formats.ts), the component hashes the sorted, de-duplicated resolved set
 * (`name@version#integrity`), so reformatting with the same versions keeps the key; otherwise,
 * or when parsing fails, the bytes with CRLF normalised to LF (text files only), so a checkout
 * with core.autocrlf gives the same key. 'auto' looks for the names below in the workspace root
 * only. A lockfile that is a component is not also a source file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { InputError, errorMessage } from '../errors.js';
import { sha256, sortBytes, toPosix } from '../util/bytes.js';
import { isInside } from '../util/fsx.js';
import { normaliseLineEndings } from './canonical.js';
import { parserFor, type Resolved } from './lockfile-formats.js';
import type { KeyComponent } from './types.js';

/** Names detected by `lockfiles: auto`, in the workspace root. */
export const LOCKFILE_NAMES: readonly string[] = Object.freeze([
  // JavaScript
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lock',
  'bun.lockb',
  'deno.lock',
  // Rust, Go
  'Cargo.lock',
  'go.sum',
  'go.work.sum',
  // Python
  'poetry.lock',
  'Pipfile.lock',
  'uv.lock',
  'pdm.lock',
  'pixi.lock',
  'conda-lock.yml',
  'requirements.txt',
  // Ruby, PHP, Elixir, Erlang, Dart, Swift, CocoaPods, Crystal, Julia, R, Haskell, Nix
  'Gemfile.lock',
  'composer.lock',
  'mix.lock',
  'rebar.lock',
  'pubspec.lock',
  'Package.resolved',
  'Podfile.lock',
  'shard.lock',
  'Manifest.toml',
  'renv.lock',
  'stack.yaml.lock',
  'cabal.project.freeze',
  'flake.lock',
  // JVM, .NET
  'gradle.lockfile',
  'buildscript-gradle.lockfile',
  'packages.lock.json',
  'paket.lock',
  // C and C++, build systems, infrastructure
  'conan.lock',
  'vcpkg.json',
  'vcpkg-configuration.json',
  'MODULE.bazel.lock',
  '.terraform.lock.hcl',
]);

/** The lockfile components and what the manifest records about them. */
export interface LockfileResult {
  readonly components: KeyComponent[];
  /** Relative posix path of every lockfile that became a component. */
  readonly paths: readonly string[];
  /** Per parsed lockfile: dependency name -> version(s), for explain. */
  readonly dependencies: Record<string, Record<string, string>>;
}

/**
 * One component per lockfile, sorted by relative path (byte order) so the order of an explicit
 * list does not matter. Explicit entries must exist and be files (or symlinks to files).
 */
export async function lockfileComponents(
  workspace: string,
  lockfiles: readonly string[] | 'auto',
): Promise<LockfileResult> {
  const found = new Map<string, string>(); // relpath -> absolute
  if (lockfiles === 'auto') {
    for (const name of LOCKFILE_NAMES) {
      const abs = path.join(workspace, name);
      if (await isFile(abs)) found.set(name, abs);
    }
  } else {
    for (const entry of lockfiles) {
      const trimmed = entry.trim();
      if (trimmed === '') continue;
      const abs = path.resolve(workspace, trimmed);
      if (!isInside(workspace, abs) || abs === workspace) {
        throw new InputError('lockfiles', `'${entry}' is not a file inside the workspace`);
      }
      if (!(await isFile(abs))) {
        throw new InputError(
          'lockfiles',
          `'${entry}' does not exist in the workspace (${workspace}); list lockfiles relative to ` +
            `the workspace, or use 'auto'`,
        );
      }
      found.set(toPosix(path.relative(workspace, abs)), abs);
    }
  }
  const components: KeyComponent[] = [];
  const dependencies: Record<string, Record<string, string>> = {};
  const paths = sortBytes(found.keys());
  for (const rel of paths) {
    const data = await fs.readFile(found.get(rel) as string);
    const resolved = parseLockfile(rel, data);
    if (resolved === undefined) {
      components.push({
        kind: 'lockfile',
        name: `lockfile:${rel}`,
        hash: sha256(normaliseLineEndings(data)),
        value: `${rel} (bytes)`,
      });
      continue;
    }
    components.push({
      kind: 'lockfile',
      name: `lockfile:${rel}`,
      hash: sha256(`${resolved.format}\n${resolved.lines.join('\n')}`),
      value: `${rel} (${resolved.lines.length} resolved)`,
    });
    dependencies[rel] = resolved.versions;
  }
  return { components, paths, dependencies };
}

interface ParsedLockfile {
  readonly format: string;
  /** Sorted, unique `name@version` or `name@version#integrity` lines. */
  readonly lines: string[];
  /** name -> version (several versions joined with ', ' in byte order). */
  readonly versions: Record<string, string>;
}

/** The resolved set of a lockfile whose format we read, else undefined (hashed as bytes). */
export function parseLockfile(rel: string, data: Buffer): ParsedLockfile | undefined {
  const parser = parserFor(path.posix.basename(rel));
  if (parser === undefined) return undefined;
  let resolved: Resolved[];
  try {
    resolved = parser.parse(data.toString('utf8'));
  } catch (err) {
    core.debug(`${rel}: not read as ${parser.format} (${errorMessage(err)}), hashing its bytes`);
    return undefined;
  }
  const lines = new Set<string>();
  const byName = new Map<string, Set<string>>();
  for (const r of resolved) {
    lines.add(
      r.integrity === '' ? `${r.name}@${r.version}` : `${r.name}@${r.version}#${r.integrity}`,
    );
    const versions = byName.get(r.name) ?? new Set<string>();
    versions.add(r.version);
    byName.set(r.name, versions);
  }
  const versions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of sortBytes(byName.keys())) {
    versions[name] = sortBytes(byName.get(name) as Set<string>).join(', ');
  }
  return { format: parser.format, lines: sortBytes(lines), versions: { ...versions } };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}
