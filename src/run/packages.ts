/**
 * What a step caches, as a list of packages. The single-package form (`path` + the key inputs)
 * is a workspace of one; a workspace file declares several, each with its own outputs and a key
 * that includes the keys of the packages it depends on.
 */
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { Inputs, parseOutputPaths, type Config } from '../inputs.js';
import { computeKey, computePackageKeys, parseWorkspace } from '../key/index.js';
import type { CacheKey } from '../key/types.js';
import type { OutputRoot } from '../store/types.js';
import { keyInputs } from './common.js';

export interface PackagePlan {
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly roots: readonly OutputRoot[];
  readonly depends: readonly string[];
  readonly key: CacheKey;
}

export async function planPackages(config: Config): Promise<PackagePlan[]> {
  if (!config.packages) {
    const key = await computeKey(keyInputs(config));
    return [
      {
        name: config.name,
        version: config.version,
        variant: config.variant,
        roots: config.paths.map((p) => ({ name: p.name, absPath: p.absPath })),
        depends: [],
        key,
      },
    ];
  }
  const spec = parseWorkspace(config.packages.text, config.packages.source);
  const home = process.env['HOME'] ?? process.env['USERPROFILE'] ?? '';
  const keys = await computePackageKeys(spec, {
    workspace: config.workspace,
    platform: config.platform,
    env: config.env,
    toolchain: config.toolchain,
    defaults: { version: config.version, variant: config.variant, config: config.config },
  });
  return keys.map((k) => {
    let roots: OutputRoot[];
    try {
      roots = parseOutputPaths(k.outputs.join('\n'), config.workspace, home);
    } catch (err) {
      throw new InputError(
        Inputs.Packages,
        `package '${k.name}' in ${config.packages?.source ?? ''}: ${(err as Error).message}`,
      );
    }
    return {
      name: k.name,
      version: k.version,
      variant: k.variant,
      roots: roots.map((r) => ({ name: r.name, absPath: path.resolve(r.absPath) })),
      depends: k.depends,
      key: k.key,
    };
  });
}
