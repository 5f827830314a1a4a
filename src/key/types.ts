/** What the key is computed from: all of it comes from the frozen Config. */
export interface KeyInputs {
  /** Absolute workspace path (GITHUB_WORKSPACE). */
  readonly workspace: string;
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly platform: string;
  /**
   * Source globs relative to the workspace; empty means the default (tracked files); 'none'
   * means no source file enters the key (a dependency cache keyed on its lockfiles).
   */
  readonly sources: readonly string[] | 'none';
  /** The cached paths as configured (normalised names); they enter the key (compose.ts). */
  readonly paths: readonly string[];
  /** The `keep-outside-links` input: entries keeping such links get keys of their own. */
  readonly keepOutsideLinks?: boolean;
  /** Absolute paths of the cached outputs: never part of the sources. */
  readonly excludePaths: readonly string[];
  /** Lockfile paths relative to the workspace, or 'auto' to detect the common ones. */
  readonly lockfiles: readonly string[] | 'auto';
  /** Free text or YAML of build configuration. */
  readonly config: string;
  /**
   * Names of environment variables whose values enter the key (the manifest records only
   * whether each is set and a hash of its value). Omitted means none.
   */
  readonly env?: readonly string[];
  /** Where `env` values are read; default process.env. */
  readonly envValues?: Readonly<Record<string, string | undefined>>;
  /**
   * Commands (e.g. `gcc --version`) run once each through the platform shell in the workspace;
   * their trimmed stdout enters the key. Omitted means none.
   */
  readonly toolchain?: readonly string[];
  /** Timeout per toolchain command; default 60 000 ms. */
  readonly toolchainTimeoutMs?: number;
  /** False: do not ask git (hash every file). Default true. */
  readonly useGit?: boolean;
}

/** One input of the key and its hash, as recorded in meta.json and diffed by explain. */
export interface KeyComponent {
  readonly kind:
    | 'salt'
    | 'name'
    | 'version'
    | 'platform'
    | 'variant'
    | 'paths'
    | 'config'
    | 'env'
    | 'toolchain'
    | 'lockfile'
    | 'dep'
    | 'sources';
  /**
   * e.g. 'sources', 'lockfile:package-lock.json', 'config', 'env:CC', 'toolchain:gcc --version',
   * 'dep:core'.
   */
  readonly name: string;
  readonly hash: string;
  /**
   * Short human form where one exists (the platform string, the variant, the first line of a
   * toolchain's output, 'set'/'unset' for an env variable, a dependency's key). Never a secret.
   */
  readonly value?: string;
  /** How many files the component covers (the sources component). */
  readonly fileCount?: number;
}

export interface KeyManifest {
  readonly schema: number;
  readonly components: readonly KeyComponent[];
  /**
   * Relative posix path -> git blob id of the content (`link:<id>` for a symlink): what
   * explain diffs. Not necessarily in byte order (integer-like names come first in JS).
   */
  readonly files: Readonly<Record<string, string>>;
  /** Flattened config mapping (`a.b.c` -> canonical JSON of the value); absent for text. */
  readonly config?: Readonly<Record<string, string>>;
  /** Per parsed lockfile: dependency name -> resolved version(s). */
  readonly dependencies?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface CacheKey {
  /** `clyde-<name>-<platform>-<variant>-<hash>` */
  readonly key: string;
  /** `clyde-<name>-<platform>-<variant>-` */
  readonly prefix: string;
  /** sha256 hex over the canonical manifest. */
  readonly hash: string;
  readonly manifest: KeyManifest;
}
