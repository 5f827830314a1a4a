/**
 * What a step caches, as a list of packages. The single-package form (`path` + the key inputs)
 * is a workspace of one; a workspace file declares several, each with its own outputs and a key
 * that includes the keys of the packages it depends on.
 */
import { InputError } from '../errors.js';
import { homeDir, Inputs, parseOutputPaths, type Config } from '../inputs.js';
import { computeKey, computePackageKeys, parseWorkspace } from '../key/index.js';
import type { CacheKey } from '../key/types.js';
import type { OutputRoot } from '../store/types.js';
import { keyInputs, outputRoots } from './common.js';

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
        roots: outputRoots(config),
        depends: [],
        key,
      },
    ];
  }
  const spec = parseWorkspace(config.packages.text, config.packages.source);
  const home = homeDir();
  const keys = await computePackageKeys(spec, {
    workspace: config.workspace,
    platform: config.platform,
    env: config.env,
    toolchain: config.toolchain,
    keepOutsideLinks: config.keepOutsideLinks,
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
      roots,
      depends: k.depends,
      key: k.key,
    };
  });
}
