/**
 * Inputs are read here and nowhere else (STYLE.md habit 2). Each kind of value has one parser;
 * every error names the input and the form it accepts. The result is a frozen, plain-data Config
 * that main hands to post through state, so post never re-reads or re-derives anything.
 */
import * as core from '@actions/core';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from './errors.js';
import type { BucketConfig } from './remote/bucket-client.js';
import { keyPrefix } from './key/compose.js';
import { DEFAULT_WORKSPACE_FILE } from './key/packages.js';
import { toPosix } from './util/bytes.js';
import { isInside, type PathRules } from './util/fsx.js';

export const SAVE_POLICIES = ['on-success', 'always', 'never'] as const;
export type SavePolicy = (typeof SAVE_POLICIES)[number];

/** Names of the action's inputs, as in action.yml. */
export const Inputs = {
  Path: 'path',
  Sources: 'sources',
  Lockfiles: 'lockfiles',
  Config: 'config',
  Name: 'name',
  Version: 'version',
  Variant: 'variant',
  Platform: 'platform',
  RestoreKeys: 'restore-keys',
  LocalCacheDir: 'local-cache-dir',
  Remote: 'remote',
  Save: 'save',
  LookupOnly: 'lookup-only',
  FailOnCacheMiss: 'fail-on-cache-miss',
  Key: 'key',
  Env: 'env',
  Toolchain: 'toolchain',
  Packages: 'packages',
  RemoteTimeout: 'remote-timeout',
  JobStatus: 'job-status',
  KeepOutsideLinks: 'keep-outside-links',
  CrossOs: 'cross-os',
  Local: 'local',
  Bucket: 'bucket',
  BucketEndpoint: 'bucket-endpoint',
  BucketRegion: 'bucket-region',
  BucketPathStyle: 'bucket-path-style',
} as const;

export interface OutputPath {
  /** As configured, normalised: posix separators, no './', no trailing '/'. */
  readonly name: string;
  /** Absolute path on this machine. */
  readonly absPath: string;
}

export interface Config {
  readonly workspace: string;
  readonly paths: readonly OutputPath[];
  /** Globs; [] for the default (tracked files); 'none' keys on everything but source files. */
  readonly sources: readonly string[] | 'none';
  readonly lockfiles: readonly string[] | 'auto';
  readonly config: string;
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly platform: string;
  /** 'auto': the key's own prefix; [] disables fallback. */
  readonly restoreKeys: readonly string[] | 'auto';
  readonly localCacheDir: string;
  readonly remote: boolean;
  readonly save: SavePolicy;
  readonly lookupOnly: boolean;
  readonly failOnCacheMiss: boolean;
  /** Save sub-action only: an explicit key (otherwise computed as main would). */
  readonly key?: string;
  /** Names of environment variables whose values enter the key. */
  readonly env: readonly string[];
  /** Commands whose output (e.g. a compiler's version) enters the key. */
  readonly toolchain: readonly string[];
  /** A workspace of several packages (from the `packages` input or .clyde/cache.yml). */
  readonly packages?: WorkspaceSource;
  /** How the save step prunes the local store. */
  readonly prune: PruneConfig;
  /** Overall deadline of each runner-cache operation (lookup, download, upload), in ms. */
  readonly remoteTimeoutMs: number;
  /** Save and restore symlinks that lead outside the workspace (links into it always are). */
  readonly keepOutsideLinks: boolean;
  /**
   * Windows runner-cache entries share one version with Linux and macOS ones (actions/cache's
   * enableCrossOsArchive), so a key or restore key made on one OS can match an entry of another.
   */
  readonly crossOs: boolean;
  /**
   * Whether the local store is kept (the `local` input; `auto`: on every runner but a
   * GitHub-hosted one, whose disk goes with the job). Off, nothing is written under
   * `localCacheDir`: a remote hit is restored straight from its download, and a save goes
   * through a store for this step only.
   */
  readonly local: boolean;
  /** The bucket tier (the `bucket*` inputs), when `bucket` is set. */
  readonly bucket?: BucketConfig;
}

/** The text of a workspace file and where it came from (for error messages). */
export interface WorkspaceSource {
  readonly source: string;
  readonly text: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseEnvNames(raw: string): string[] {
  const names = parseList(raw.replace(/[ ,]+/g, '\n'));
  for (const n of names) {
    if (!ENV_NAME.test(n)) {
      throw new InputError(
        Inputs.Env,
        `'${n}' is not an environment variable name; list names such as CC or CFLAGS, separated by spaces, commas or new lines.`,
      );
    }
  }
  return [...new Set(names)];
}

/**
 * The `packages` input: a path to a workspace file (relative to the workspace), or the YAML
 * itself. Empty: .clyde/cache.yml when it exists and no `path` was given.
 */
export function readWorkspaceSource(
  raw: string,
  workspace: string,
  pathGiven: boolean,
  host: Host = NATIVE_HOST,
): WorkspaceSource | undefined {
  const v = raw.trim();
  if (v === '') {
    if (pathGiven) return undefined;
    const file = host.path.join(workspace, DEFAULT_WORKSPACE_FILE);
    if (!fs.existsSync(file)) return undefined;
    return { source: DEFAULT_WORKSPACE_FILE, text: fs.readFileSync(file, 'utf8') };
  }
  if (v.includes('\n') || v.startsWith('packages:'))
    return { source: "the 'packages' input", text: v };
  const file = host.path.resolve(workspace, toPosix(v));
  try {
    return { source: toPosix(v), text: fs.readFileSync(file, 'utf8') };
  } catch (err) {
    throw new InputError(
      Inputs.Packages,
      `cannot read the workspace file '${v}' (${(err as NodeJS.ErrnoException).code ?? String(err)}); give a path relative to the workspace, or the YAML itself.`,
    );
  }
}

type Env = Readonly<Record<string, string | undefined>>;

// ---- paths: the machine's rules, home, and what may be cached --------------------------------

/**
 * The rules paths are read under: this machine's by default; tests pass Windows' (path.win32)
 * on Linux. Whatever the platform, a backslash in a path input separates segments (as on the
 * runners' Windows images), so `build\out` names build/out on Linux too.
 */
export interface Host {
  readonly path: PathRules;
  readonly platform: NodeJS.Platform;
  /** The OS's home directory, used when the environment names none. */
  readonly homedir: () => string;
}

export const NATIVE_HOST: Host = { path, platform: process.platform, homedir: () => os.homedir() };

/** Home: USERPROFILE on Windows (HOME there is unset or an MSYS path), HOME elsewhere. */
export function homeDir(env: Env = process.env, host: Host = NATIVE_HOST): string {
  const names = host.platform === 'win32' ? ['USERPROFILE', 'HOME'] : ['HOME'];
  for (const name of names) {
    const v = env[name];
    if (v) return v;
  }
  return host.homedir();
}

/**
 * A path input made absolute: `~`, `~/x` and `~\x` start at `home`, other relative paths at the
 * workspace. Backslashes are separators (see Host).
 */
export function resolveInputPath(
  raw: string,
  workspace: string,
  home: string,
  host: Host = NATIVE_HOST,
): string {
  // Only the separators change: toPosix would also drop the '/' that makes 'D:/' a root.
  const p = raw.trim().replace(/\\/g, '/');
  if (p === '~' || p.startsWith('~/')) return host.path.resolve(home, p.slice(2));
  return host.path.resolve(workspace, p);
}

/** True when one segment of `abs` is `.git` (any case: Windows and macOS fold it). */
function inGitDir(abs: string): boolean {
  return toPosix(abs)
    .split('/')
    .some((segment) => segment.toLowerCase() === '.git');
}

const CACHEABLE =
  'list build outputs: files or directories inside the workspace (not the workspace itself), ' +
  'or outside it without containing it (e.g. ~/.cache/tool)';

// ---- parsers: one per kind of value ----------------------------------------------------------

export function parseBoolean(input: string, raw: string, fallback: boolean): boolean {
  const v = raw.trim().toLowerCase();
  if (v === '') return fallback;
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  throw new InputError(input, `'${raw}' is not a boolean; use true or false.`);
}

export function parseChoice<T extends string>(
  input: string,
  raw: string,
  choices: readonly T[],
  fallback: T,
): T {
  const v = raw.trim().toLowerCase();
  if (v === '') return fallback;
  const found = choices.find((c) => c === v);
  if (found === undefined) {
    throw new InputError(input, `'${raw}' is not one of: ${choices.join(', ')}.`);
  }
  return found;
}

/** `local`: auto (default), true or false; auto keeps the store unless the runner is GitHub's. */
export function parseLocal(raw: string, env: NodeJS.ProcessEnv): boolean {
  const v = raw.trim().toLowerCase();
  if (v === '' || v === 'auto') return env['RUNNER_ENVIRONMENT'] !== 'github-hosted';
  if (v === 'true' || v === 'false') return v === 'true';
  throw new InputError(
    Inputs.Local,
    `'${raw}' is not one of: auto, true, false (auto keeps the local store on every runner but a GitHub-hosted one).`,
  );
}

/** Non-empty, trimmed lines; lines starting with '#' are comments. */
export function parseList(raw: string): string[] {
  return raw
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const NAME_FORM = /^[A-Za-z0-9][A-Za-z0-9._+@-]*$/;

export function parseIdentifier(input: string, raw: string, fallback: string): string {
  const v = raw.trim();
  if (v === '') return fallback;
  if (!NAME_FORM.test(v) || v.length > 100) {
    throw new InputError(
      input,
      `'${raw}' is not a valid name; use up to 100 letters, digits and . _ + @ - (starting with a letter or digit).`,
    );
  }
  return v;
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * The cached paths. A path that contains the workspace (`..`, `~` when the workspace is under
 * home) or is or lies inside a `.git` directory is refused: every source would lie under it, so
 * the key would never change, and a restore would put back old sources and git history.
 */
export function parseOutputPaths(
  raw: string,
  workspace: string,
  home: string,
  host: Host = NATIVE_HOST,
): OutputPath[] {
  const rules = host.path;
  const ws = rules.resolve(workspace);
  const lines = parseList(raw);
  if (lines.length === 0) {
    throw new InputError(
      Inputs.Path,
      "is required; list the build outputs to cache, one per line (or describe several packages in .clyde/cache.yml or the 'packages' input).",
    );
  }
  const out: OutputPath[] = [];
  for (const line of lines) {
    if (line.startsWith('!') || GLOB_CHARS.test(line)) {
      throw new InputError(
        Inputs.Path,
        `'${line}': glob patterns and exclusions are not supported; list directories or files, one per line.`,
      );
    }
    const name = toPosix(line);
    const abs = resolveInputPath(line, ws, home, host);
    if (abs === rules.parse(abs).root) {
      throw new InputError(Inputs.Path, `'${line}' is a filesystem root; ${CACHEABLE}.`);
    }
    // relative() is '' for the same path (case-folded under Windows rules).
    if (rules.relative(abs, ws) === '') {
      throw new InputError(Inputs.Path, `'${line}' is the whole workspace; ${CACHEABLE}.`);
    }
    if (isInside(abs, ws, rules)) {
      throw new InputError(
        Inputs.Path,
        `'${line}' (${abs}) contains the workspace (${ws}): restoring it would put back old sources and git history; ${CACHEABLE}.`,
      );
    }
    if (inGitDir(abs)) {
      throw new InputError(
        Inputs.Path,
        `'${line}' is or lies inside a .git directory: restoring it would rewind git history; ${CACHEABLE}.`,
      );
    }
    out.push({ name, absPath: abs });
  }
  for (const a of out) {
    for (const b of out) {
      if (a === b) continue;
      if (isInside(a.absPath, b.absPath, rules)) {
        throw new InputError(
          Inputs.Path,
          `'${b.name}' is the same as or inside '${a.name}'; list each output once, without nesting.`,
        );
      }
    }
  }
  return out;
}

export function defaultPlatform(env: Env, host: Host = NATIVE_HOST): string {
  const osName = (env['RUNNER_OS'] ?? host.platform).toLowerCase();
  const arch = (env['RUNNER_ARCH'] ?? process.arch).toLowerCase();
  return `${osName}-${arch}`;
}

export function defaultName(env: Env, workspace: string, host: Host = NATIVE_HOST): string {
  const repo = env['GITHUB_REPOSITORY'];
  const base =
    repo && repo.includes('/') ? repo.slice(repo.indexOf('/') + 1) : host.path.basename(workspace);
  const cleaned = base.replace(/[^A-Za-z0-9._+@-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned === '' ? 'package' : cleaned.slice(0, 100);
}

export function defaultLocalCacheDir(env: Env, home: string, host: Host = NATIVE_HOST): string {
  const toolCache = env['RUNNER_TOOL_CACHE'];
  if (toolCache) return host.path.join(toolCache, 'clyde-cache');
  return host.path.join(home, '.clyde', 'cache');
}

/** `local-cache-dir`: '~/' (or '~\') is the home directory, relative paths the workspace's. */
export function parseLocalCacheDir(
  raw: string,
  env: Env,
  home: string,
  workspace: string,
  host: Host = NATIVE_HOST,
): string {
  const v = raw.trim();
  if (v === '') return defaultLocalCacheDir(env, home, host);
  return resolveInputPath(v, workspace, home, host);
}

/** What an input reader looks like: core.getInput in the action, a map in tests. */
export type InputReader = (name: string) => string;

export const actionInputs: InputReader = (name) => core.getInput(name);

/** The home directory and the workspace (GITHUB_WORKSPACE, else the working directory). */
function whereAmI(env: Env, host: Host): { home: string; workspace: string } {
  return {
    home: homeDir(env, host),
    workspace: host.path.resolve(env['GITHUB_WORKSPACE'] ?? process.cwd()),
  };
}

/**
 * Parse every input once. `mode` says which step is reading: the save sub-action also takes an
 * explicit `key`. `env` and `host` are the process's own unless a test passes others.
 */
export function readConfig(
  mode: 'restore' | 'save',
  get: InputReader = actionInputs,
  env: Env = process.env,
  host: Host = NATIVE_HOST,
): Config {
  const { home, workspace } = whereAmI(env, host);

  const lockRaw = parseList(get(Inputs.Lockfiles));
  let lockfiles: readonly string[] | 'auto';
  const lockWord = lockRaw.length === 1 ? lockRaw[0]?.toLowerCase() : undefined;
  if (lockRaw.length === 0 || lockWord === 'auto') {
    lockfiles = 'auto';
  } else if (lockWord === 'none') {
    lockfiles = [];
  } else {
    lockfiles = lockRaw.map((l) => toPosix(l));
  }

  const rkRaw = parseList(get(Inputs.RestoreKeys));
  let restoreKeys: readonly string[] | 'auto';
  if (rkRaw.length === 0) restoreKeys = 'auto';
  else if (rkRaw.length === 1 && rkRaw[0]?.toLowerCase() === 'none') restoreKeys = [];
  else {
    for (const k of rkRaw) {
      if (k.includes(',') || k.length > 512) {
        throw new InputError(
          Inputs.RestoreKeys,
          `'${k}' is not a valid key prefix; one prefix per line, no commas, at most 512 characters (or 'none').`,
        );
      }
    }
    restoreKeys = rkRaw;
  }

  const localCacheDir = parseLocalCacheDir(get(Inputs.LocalCacheDir), env, home, workspace, host);

  let key: string | undefined;
  if (mode === 'save') {
    const k = get(Inputs.Key).trim();
    if (k !== '') {
      if (k.includes(',') || k.length > 512) {
        throw new InputError(
          Inputs.Key,
          `'${k}' is not a valid key; no commas, at most 512 characters.`,
        );
      }
      key = k;
    }
  }

  const platformRaw = get(Inputs.Platform).trim();
  const pathRaw = get(Inputs.Path);
  const packages = readWorkspaceSource(
    get(Inputs.Packages),
    workspace,
    parseList(pathRaw).length > 0,
    host,
  );
  if (packages && parseList(pathRaw).length > 0) {
    throw new InputError(
      Inputs.Packages,
      "and 'path' were both given; list outputs per package in the workspace file, or use 'path' alone.",
    );
  }
  const config: Config = {
    workspace,
    paths: packages ? [] : parseOutputPaths(pathRaw, workspace, home, host),
    sources: parseSources(get(Inputs.Sources)),
    lockfiles,
    config: get(Inputs.Config),
    name: parseIdentifier(Inputs.Name, get(Inputs.Name), defaultName(env, workspace, host)),
    version: parseIdentifier(Inputs.Version, get(Inputs.Version), 'unversioned'),
    variant: parseIdentifier(Inputs.Variant, get(Inputs.Variant), 'default'),
    platform: parseIdentifier(
      Inputs.Platform,
      platformRaw,
      defaultPlatform(env, host).replace(/[^A-Za-z0-9._+@-]/g, '_'),
    ),
    restoreKeys,
    localCacheDir,
    remote: parseBoolean(Inputs.Remote, get(Inputs.Remote), true),
    save: parseChoice(Inputs.Save, get(Inputs.Save), SAVE_POLICIES, 'on-success'),
    lookupOnly: parseBoolean(Inputs.LookupOnly, get(Inputs.LookupOnly), false),
    failOnCacheMiss: parseBoolean(Inputs.FailOnCacheMiss, get(Inputs.FailOnCacheMiss), false),
    ...(key !== undefined ? { key } : {}),
    env: parseEnvNames(get(Inputs.Env)),
    toolchain: parseList(get(Inputs.Toolchain)),
    ...(packages ? { packages } : {}),
    prune: readPruneConfig(get),
    remoteTimeoutMs: parseRemoteTimeout(get(Inputs.RemoteTimeout)),
    keepOutsideLinks: parseBoolean(Inputs.KeepOutsideLinks, get(Inputs.KeepOutsideLinks), false),
    crossOs: parseBoolean(Inputs.CrossOs, get(Inputs.CrossOs), false),
    local: parseLocal(get(Inputs.Local), env),
    ...bucketOf(parseBucket(get)),
  };
  return deepFreeze(config);
}

function bucketOf(bucket: BucketConfig | undefined): { bucket?: BucketConfig } {
  return bucket ? { bucket } : {};
}

/**
 * The bucket tier's inputs: `bucket` (s3://name or s3://name/prefix; empty: no bucket tier),
 * `bucket-endpoint` (an http(s) URL, for services other than AWS S3), `bucket-region` and
 * `bucket-path-style`. The same inputs in the main action and the gc sub-action.
 */
export function parseBucket(get: InputReader = actionInputs): BucketConfig | undefined {
  const raw = get(Inputs.Bucket).trim();
  const endpointRaw = get(Inputs.BucketEndpoint).trim();
  const regionRaw = get(Inputs.BucketRegion).trim();
  const pathStyle = parseBoolean(Inputs.BucketPathStyle, get(Inputs.BucketPathStyle), false);
  if (raw === '') {
    if (endpointRaw !== '' || regionRaw !== '') {
      throw new InputError(
        Inputs.Bucket,
        "is empty but 'bucket-endpoint' or 'bucket-region' is set; give the bucket as s3://name/prefix.",
      );
    }
    return undefined;
  }
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(raw);
  const name = m?.[1] ?? '';
  // S3's rules for bucket names (R2, GCS and MinIO accept a subset or the same).
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes('..')) {
    throw new InputError(
      Inputs.Bucket,
      `'${raw}' is not a bucket; the form is s3://name or s3://name/prefix, the name 3 to 63 lower-case letters, digits, '.' and '-'.`,
    );
  }
  const segments = (m[2] ?? '').split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..') || (m[2] ?? '').length > 512) {
    throw new InputError(
      Inputs.Bucket,
      `'${raw}' has a prefix with '.' or '..' segments or over 512 characters; use s3://name/some/prefix.`,
    );
  }
  let endpoint = '';
  if (endpointRaw !== '') {
    let url: URL | undefined;
    try {
      url = new URL(endpointRaw);
    } catch {
      url = undefined;
    }
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash) {
      throw new InputError(
        Inputs.BucketEndpoint,
        `'${endpointRaw}' is not an endpoint; give an http(s) URL such as https://<account>.r2.cloudflarestorage.com or http://minio.internal:9000 (empty for AWS S3).`,
      );
    }
    endpoint = endpointRaw.replace(/\/+$/, '');
  }
  if (regionRaw !== '' && !/^[a-z0-9-]{1,40}$/.test(regionRaw)) {
    throw new InputError(
      Inputs.BucketRegion,
      `'${regionRaw}' is not a region; a name like us-east-1 or auto (empty: AWS_REGION, else us-east-1).`,
    );
  }
  return {
    name,
    prefix: segments.length > 0 ? `${segments.join('/')}/` : '',
    endpoint,
    region: regionRaw,
    pathStyle,
  };
}

/**
 * `sources`: globs, one per line; empty for the default (the files git tracks); `none` for a
 * key of lockfiles, configuration, env and toolchain only (a dependency cache).
 */
export function parseSources(raw: string): readonly string[] | 'none' {
  const lines = parseList(raw);
  if (lines.some((l) => l.toLowerCase() === 'none')) {
    if (lines.length > 1) {
      throw new InputError(
        Inputs.Sources,
        "'none' cannot be combined with globs; give 'none' alone, or globs one per line.",
      );
    }
    return 'none';
  }
  return lines;
}

/** `remote-timeout`: a duration above zero; default 10 minutes. */
export function parseRemoteTimeout(raw: string): number {
  const ms = parseDuration(Inputs.RemoteTimeout, raw, 10 * 60_000) ?? 0;
  if (ms <= 0) {
    throw new InputError(
      Inputs.RemoteTimeout,
      `'${raw}' is not a time limit; use a duration above zero: a number with a unit s, m or h (e.g. 10m, 90s).`,
    );
  }
  return ms;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Rebuild a frozen Config from what main serialised (post never re-reads inputs). */
export function configFromJson(json: unknown): Config {
  return deepFreeze(structuredClone(json) as Config);
}

// ---- prune and garbage collection (issue 5) ---------------------------------------------------

/** Names of the prune inputs (root action.yml, restore/action.yml, gc/action.yml). */
export const PruneInputs = {
  MaxSize: 'max-size',
  MaxAge: 'max-age',
  Ttl: 'ttl',
  KeepVersions: 'keep-versions',
  CleanupInterval: 'cleanup-interval',
} as const;

/** Names of the inputs only the gc sub-action has. */
export const GcInputs = {
  Token: 'token',
  LocalCacheDir: 'local-cache-dir',
  Local: 'local',
  Remote: 'remote',
  DryRun: 'dry-run',
  KeyPrefix: 'key-prefix',
  IncludeForeignKeys: 'include-foreign-keys',
  BucketGrace: 'bucket-grace',
} as const;

/**
 * Limits of the prune policy (src/prune/policy.ts). Durations and sizes are plain numbers
 * (milliseconds, bytes); `null` means "no such limit".
 */
export interface PruneConfig {
  /** Size budget in bytes (LRU eviction down to it), or null for none. */
  readonly maxSizeBytes: number | null;
  /** Entries created longer ago than this are deleted (keep-versions still applies). */
  readonly maxAgeMs: number | null;
  readonly ttl: {
    /** `content`: entries unused (last access) for longer than this are expired. */
    readonly contentMs: number | null;
  };
  /** At least this many entries per package+platform+variant survive every rule but pinning. */
  readonly keepVersions: number;
  /** Post prunes only when this long has passed since the last prune; 0 = every run. */
  readonly cleanupIntervalMs: number;
}

/** Documented defaults of the prune inputs (as in action.yml). */
export const PRUNE_DEFAULTS = {
  ttl: 'content=7d',
  keepVersions: 1,
  cleanupInterval: '1d',
} as const;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};
const SIZE_FORM =
  'a number with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 10GB';

/** '10GB', '512MiB', '1.5 TB', '1024' (bytes). Empty: `fallback`. */
export function parseSize(
  input: string,
  raw: string,
  fallback: number | null = null,
): number | null {
  const v = raw.trim();
  if (v === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v);
  const factor = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || factor === undefined)
    throw new InputError(input, `'${raw}' is not a size; use ${SIZE_FORM}.`);
  const bytes = Math.floor(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new InputError(input, `'${raw}' is too large.`);
  return bytes;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION_FORM = 'a number with a unit s, m, h, d or w (e.g. 30d, 12h), or 0';

/** '30d', '12h', '1.5h', '0'. Empty: `fallback`. */
export function parseDuration(
  input: string,
  raw: string,
  fallback: number | null = null,
): number | null {
  const v = raw.trim();
  if (v === '') return fallback;
  if (/^0+(?:\.0+)?$/.test(v)) return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(v);
  const factor = m ? DURATION_UNITS[m[2] ?? ''] : undefined;
  if (!m || factor === undefined) {
    throw new InputError(input, `'${raw}' is not a duration; use ${DURATION_FORM}.`);
  }
  const ms = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(ms)) throw new InputError(input, `'${raw}' is too long.`);
  return ms;
}

/** A whole number >= min. Empty: `fallback`. */
export function parseCount(input: string, raw: string, fallback: number, min = 0): number {
  const v = raw.trim();
  if (v === '') return fallback;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) {
    throw new InputError(input, `'${raw}' is not a whole number >= ${min}.`);
  }
  return Number(v);
}

const TTL_FORM =
  "content=<duration> (the one class, 'content'), e.g. content=7d; content=none for no TTL";

/** 'content=7d'. Empty keeps the default; 'none' (or 'off') switches the TTL off. */
export function parseTtl(input: string, raw: string): PruneConfig['ttl'] {
  return parseTtlPairs(input, raw, parseTtlPairs(input, PRUNE_DEFAULTS.ttl, null).contentMs);
}

function parseTtlPairs(input: string, raw: string, base: number | null): PruneConfig['ttl'] {
  let contentMs = base;
  let seen = false;
  for (const part of raw.split(/[,\n]/)) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    const cls = (eq < 0 ? '' : p.slice(0, eq)).trim().toLowerCase();
    if (cls !== 'content') throw new InputError(input, `'${p}' is not a TTL; use ${TTL_FORM}.`);
    if (seen) throw new InputError(input, `'${cls}' is given twice; use ${TTL_FORM}.`);
    seen = true;
    const value = p.slice(eq + 1).trim();
    contentMs = ['none', 'off'].includes(value.toLowerCase())
      ? null
      : parseDuration(input, value === '' ? 'x' : value);
  }
  return { contentMs };
}

/** The prune limits: read by main (into the Config handed to post) and by the gc sub-action. */
export function readPruneConfig(get: InputReader = actionInputs): PruneConfig {
  const config: PruneConfig = {
    maxSizeBytes: parseSize(PruneInputs.MaxSize, get(PruneInputs.MaxSize)),
    maxAgeMs: parseDuration(PruneInputs.MaxAge, get(PruneInputs.MaxAge)),
    ttl: parseTtl(PruneInputs.Ttl, get(PruneInputs.Ttl)),
    keepVersions: parseCount(
      PruneInputs.KeepVersions,
      get(PruneInputs.KeepVersions),
      PRUNE_DEFAULTS.keepVersions,
    ),
    cleanupIntervalMs:
      parseDuration(
        PruneInputs.CleanupInterval,
        get(PruneInputs.CleanupInterval),
        parseDuration(PruneInputs.CleanupInterval, PRUNE_DEFAULTS.cleanupInterval),
      ) ?? 0,
  };
  return deepFreeze(config);
}

export interface GcConfig {
  /** For the REST API; empty when `remote` is false. */
  readonly token: string;
  /** GITHUB_API_URL (default https://api.github.com). */
  readonly apiUrl: string;
  /** owner/name from GITHUB_REPOSITORY. */
  readonly repository: string;
  readonly local: boolean;
  readonly localCacheDir: string;
  readonly remote: boolean;
  readonly dryRun: boolean;
  /** Keys `<prefix><name>-<platform>-<variant>-<hash>` are clyde keys. */
  readonly keyPrefix: string;
  /** Apply the rules that need no package (TTL, max-age, closed-pr, budget) to other keys too. */
  readonly includeForeignKeys: boolean;
  readonly prune: PruneConfig;
  /** The bucket tier to collect (the same `bucket*` inputs as the main action). */
  readonly bucket?: BucketConfig;
  /** Unreferenced bucket blobs younger than this are kept (a save may be about to use them). */
  readonly bucketGraceMs: number;
}

/**
 * Saves refresh the blobs they rely on when older than 6 hours (remote/bucket.ts), so the grace
 * period must outlast that plus the longest save.
 */
export const MIN_BUCKET_GRACE_MS = 7 * 60 * 60_000;

export function parseBucketGrace(raw: string): number {
  const ms = parseDuration(GcInputs.BucketGrace, raw, 24 * 60 * 60_000) ?? 0;
  if (ms < MIN_BUCKET_GRACE_MS) {
    throw new InputError(
      GcInputs.BucketGrace,
      `'${raw}' is too short; use a duration of at least 7h (a number with h, d or w, e.g. 1d): saves in flight refresh older blobs only after 6 hours.`,
    );
  }
  return ms;
}

/** Every input of the gc sub-action, parsed once. */
export function readGcConfig(
  get: InputReader = actionInputs,
  env: Env = process.env,
  host: Host = NATIVE_HOST,
): GcConfig {
  const { home, workspace } = whereAmI(env, host);
  const localCacheDir = parseLocalCacheDir(get(GcInputs.LocalCacheDir), env, home, workspace, host);
  const local = parseBoolean(GcInputs.Local, get(GcInputs.Local), false);
  const remote = parseBoolean(GcInputs.Remote, get(GcInputs.Remote), true);
  const token = get(GcInputs.Token).trim();
  const repository = env['GITHUB_REPOSITORY'] ?? '';
  if (remote && token === '') {
    throw new InputError(
      GcInputs.Token,
      "is empty; pass a token with 'actions: write' (the default is ${{ github.token }}), or set 'remote: false'.",
    );
  }
  if (remote && !/^[^/\s]+\/[^/\s]+$/.test(repository)) {
    throw new InputError(
      GcInputs.Remote,
      `GITHUB_REPOSITORY is '${repository}', not owner/name; run on a runner or set 'remote: false'.`,
    );
  }
  const keyPrefix = get(GcInputs.KeyPrefix).trim() || 'clyde-';
  if (keyPrefix.includes(',') || keyPrefix.length > 100) {
    throw new InputError(
      GcInputs.KeyPrefix,
      `'${keyPrefix}' is not a key prefix; no commas, at most 100 characters.`,
    );
  }
  const config: GcConfig = {
    token,
    apiUrl: (env['GITHUB_API_URL'] ?? '').trim() || 'https://api.github.com',
    repository,
    local,
    localCacheDir,
    remote,
    dryRun: parseBoolean(GcInputs.DryRun, get(GcInputs.DryRun), false),
    keyPrefix,
    includeForeignKeys: parseBoolean(
      GcInputs.IncludeForeignKeys,
      get(GcInputs.IncludeForeignKeys),
      false,
    ),
    prune: readPruneConfig(get),
    ...bucketOf(parseBucket(get)),
    bucketGraceMs: parseBucketGrace(get(GcInputs.BucketGrace)),
  };
  return deepFreeze(config);
}

// ---- the job's status, and habits brought from actions/cache ---------------------------------

export const JOB_STATUSES = ['success', 'failure', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number] | 'unknown';

/**
 * The job's status as this step runs, from the `job-status` input: its default
 * `${{ job.status }}` is evaluated by the runner for every step, post included (post-if cannot
 * tell post whether the job failed). 'unknown' when empty or anything else.
 */
export function readJobStatus(get: InputReader = actionInputs): JobStatus {
  const v = get(Inputs.JobStatus).trim().toLowerCase();
  return JOB_STATUSES.find((s) => s === v) ?? 'unknown';
}

/**
 * Inputs of actions/cache that this action does not have, with what to use instead. The runner
 * passes undeclared inputs as INPUT_* too and itself only warns "Unexpected input(s)", so they
 * are read from the environment here.
 */
const ACTIONS_CACHE_INPUTS: Readonly<Record<string, string>> = {
  key:
    'clyde-cache computes the key itself from what goes into the build: list it in `sources`, ' +
    '`lockfiles`, `config`, `env` and `toolchain` (a dependency cache keyed on its lockfiles ' +
    'alone: `sources: none`), and tell caches apart with `name` or `variant`',
  'save-always':
    'use `save: always` (after a failed build the outputs are then saved as a fallback only, never an exact hit)',
  enableCrossOsArchive:
    'clyde-cache has no cross-OS switch: the platform is part of every key (the `platform` ' +
    'input, by default the runner OS and architecture such as linux_x64), so each OS has its own entries',
  'upload-chunk-size':
    'there is no equivalent (each entry is uploaded as one pack, bounded by `remote-timeout`); remove it',
};

/**
 * Warnings for inputs given to this action that it does not read, as a newcomer from
 * actions/cache would write them, and for restore keys that can never match a clyde key.
 */
export function habitWarnings(
  mode: 'restore' | 'save',
  config: Pick<Config, 'restoreKeys' | 'name' | 'platform' | 'variant' | 'packages'>,
  env: Env = process.env,
): string[] {
  const given = new Set(
    Object.entries(env)
      .filter(([name, value]) => name.startsWith('INPUT_') && (value ?? '').trim() !== '')
      .map(([name]) => name.slice('INPUT_'.length)),
  );
  const out: string[] = [];
  for (const [input, instead] of Object.entries(ACTIONS_CACHE_INPUTS)) {
    if (mode === 'save' && input === Inputs.Key) continue; // the save sub-action has `key`
    if (!given.has(input.replace(/ /g, '_').toUpperCase())) continue;
    out.push(
      `Input '${input}' is an actions/cache input that clyde-cache does not read: ${instead}.`,
    );
  }
  if (config.restoreKeys !== 'auto') {
    const own = config.packages
      ? undefined
      : {
          raw: `clyde-${config.name}-${config.platform}-${config.variant}-`,
          key: keyPrefix(config),
        };
    for (const k of config.restoreKeys) {
      const why = restoreKeyProblem(k, own);
      if (why !== undefined) out.push(`Input 'restore-keys': '${k}' can never match: ${why}`);
    }
  }
  return out;
}

/** Why a restore key can match no clyde key, or undefined when it can match one. */
function restoreKeyProblem(
  k: string,
  own: { readonly raw: string; readonly key: string } | undefined,
): string | undefined {
  const form = `every key reads clyde-<name>-<platform>-<variant>-<hash>${own ? ` (this step's prefix: ${own.key})` : ''}`;
  if (!k.startsWith('clyde-')) {
    return `${form}; a key of actions/cache or another action is never found here. Give a prefix of a clyde key, or leave 'restore-keys' empty for the step's own prefix.`;
  }
  if (keyPrefixCanMatch(k)) return undefined;
  const hint =
    own && k.startsWith(own.raw) && own.raw !== own.key
      ? ` Did you mean '${own.key}${k.slice(own.raw.length)}'?`
      : '';
  return `${form}, where name, platform and variant hold only letters, digits, '.' and '_' (any other character, such as '-', is written '_': linux-x64 becomes linux_x64).${hint}`;
}

/** True when some key `clyde-<part>-<part>-<part>-<64 hex>` starts with `k` (which starts with clyde-). */
function keyPrefixCanMatch(k: string): boolean {
  const fields = k.slice('clyde-'.length).split('-');
  if (fields.length > 4) return false;
  return fields.every((f, i) => {
    const last = i === fields.length - 1;
    if (i === 3) return /^[0-9a-f]{0,64}$/.test(f);
    return /^[A-Za-z0-9._]*$/.test(f) && (last || f !== '') && f.length <= 100;
  });
}
