/**
 * Lockfile components: one `lockfile:<relpath>` component per lockfile, hashed over its bytes
 * with CRLF normalised to LF (text files only), so a checkout with core.autocrlf gives the same
 * key. 'auto' looks for the names below in the workspace root only.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { sha256, sortBytes, toPosix } from '../util/bytes.js';
import { isInside } from '../util/fsx.js';
import { normaliseLineEndings } from './canonical.js';
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

/**
 * One component per lockfile, sorted by relative path (byte order) so the order of an explicit
 * list does not matter. Explicit entries must exist and be files (or symlinks to files).
 */
export async function lockfileComponents(
  workspace: string,
  lockfiles: readonly string[] | 'auto',
): Promise<KeyComponent[]> {
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
  for (const rel of sortBytes(found.keys())) {
    const data = await fs.readFile(found.get(rel) as string);
    components.push({
      kind: 'lockfile',
      name: `lockfile:${rel}`,
      hash: sha256(normaliseLineEndings(data)),
      value: rel,
    });
  }
  return components;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}
