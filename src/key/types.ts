/** What the key is computed from: all of it comes from the frozen Config. */
export interface KeyInputs {
  /** Absolute workspace path (GITHUB_WORKSPACE). */
  readonly workspace: string;
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly platform: string;
  /** Source globs relative to the workspace; empty means the default (tracked files). */
  readonly sources: readonly string[];
  /** Absolute paths of the cached outputs: never part of the sources. */
  readonly excludePaths: readonly string[];
  /** Lockfile paths relative to the workspace, or 'auto' to detect the common ones. */
  readonly lockfiles: readonly string[] | 'auto';
  /** Free text or YAML of build configuration. */
  readonly config: string;
}

/** One input of the key and its hash, as recorded in meta.json and diffed by explain. */
export interface KeyComponent {
  readonly kind:
    'salt' | 'name' | 'version' | 'platform' | 'variant' | 'config' | 'lockfile' | 'sources';
  /** e.g. 'sources', 'lockfile:package-lock.json', 'config'. */
  readonly name: string;
  readonly hash: string;
  /** Short human form where one exists (the platform string, the variant). */
  readonly value?: string;
  /** How many files the component covers (the sources component). */
  readonly fileCount?: number;
}

export interface KeyManifest {
  readonly schema: number;
  readonly components: readonly KeyComponent[];
  /** Relative posix path -> sha256 of content, byte-order sorted: what explain diffs. */
  readonly files: Readonly<Record<string, string>>;
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
