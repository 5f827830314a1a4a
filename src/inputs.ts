/**
 * Inputs are read here and nowhere else (STYLE.md habit 2). Each kind of value has one parser;
 * every error names the input and the form it accepts. The result is a frozen, plain-data Config
 * that main hands to post through state, so post never re-reads or re-derives anything.
 */
import * as core from '@actions/core';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from './errors.js';
import { toPosix } from './util/bytes.js';

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
  readonly sources: readonly string[];
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
}

type Env = Readonly<Record<string, string | undefined>>;

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

export function parseOutputPaths(raw: string, workspace: string, home: string): OutputPath[] {
  const lines = parseList(raw);
  if (lines.length === 0) {
    throw new InputError(
      Inputs.Path,
      'is required; list the build outputs to cache, one per line.',
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
    let abs: string;
    if (line === '~' || line.startsWith('~/')) abs = path.join(home, line.slice(1));
    else abs = path.resolve(workspace, line);
    if (abs === path.parse(abs).root) {
      throw new InputError(Inputs.Path, `'${line}' is a filesystem root; list build outputs.`);
    }
    const ws = path.resolve(workspace);
    if (abs === ws) {
      throw new InputError(Inputs.Path, `'${line}' is the whole workspace; list build outputs.`);
    }
    const name = toPosix(line);
    out.push({ name, absPath: abs });
  }
  for (const a of out) {
    for (const b of out) {
      if (a === b) continue;
      const rel = path.relative(a.absPath, b.absPath);
      if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
        throw new InputError(
          Inputs.Path,
          `'${b.name}' is the same as or inside '${a.name}'; list each output once, without nesting.`,
        );
      }
    }
  }
  return out;
}

export function defaultPlatform(env: Env): string {
  const osName = (env['RUNNER_OS'] ?? process.platform).toLowerCase();
  const arch = (env['RUNNER_ARCH'] ?? process.arch).toLowerCase();
  return `${osName}-${arch}`;
}

export function defaultName(env: Env, workspace: string): string {
  const repo = env['GITHUB_REPOSITORY'];
  const base =
    repo && repo.includes('/') ? repo.slice(repo.indexOf('/') + 1) : path.basename(workspace);
  const cleaned = base.replace(/[^A-Za-z0-9._+@-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned === '' ? 'package' : cleaned.slice(0, 100);
}

export function defaultLocalCacheDir(env: Env, home: string): string {
  const toolCache = env['RUNNER_TOOL_CACHE'];
  if (toolCache) return path.join(toolCache, 'clyde-cache');
  return path.join(home, '.clyde', 'cache');
}

/** What an input reader looks like: core.getInput in the action, a map in tests. */
export type InputReader = (name: string) => string;

export const actionInputs: InputReader = (name) => core.getInput(name);

/**
 * Parse every input once. `mode` says which step is reading: the save sub-action also takes an
 * explicit `key`.
 */
export function readConfig(
  mode: 'restore' | 'save',
  get: InputReader = actionInputs,
  env: Env = process.env,
): Config {
  const home = env['HOME'] ?? env['USERPROFILE'] ?? os.homedir();
  const workspace = path.resolve(env['GITHUB_WORKSPACE'] ?? process.cwd());

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

  const localRaw = get(Inputs.LocalCacheDir).trim();
  let localCacheDir = defaultLocalCacheDir(env, home);
  if (localRaw !== '') {
    localCacheDir =
      localRaw === '~' || localRaw.startsWith('~/')
        ? path.join(home, localRaw.slice(1))
        : path.resolve(workspace, localRaw);
  }

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
  const config: Config = {
    workspace,
    paths: parseOutputPaths(get(Inputs.Path), workspace, home),
    sources: parseList(get(Inputs.Sources)),
    lockfiles,
    config: get(Inputs.Config),
    name: parseIdentifier(Inputs.Name, get(Inputs.Name), defaultName(env, workspace)),
    version: parseIdentifier(Inputs.Version, get(Inputs.Version), 'unversioned'),
    variant: parseIdentifier(Inputs.Variant, get(Inputs.Variant), 'default'),
    platform: parseIdentifier(
      Inputs.Platform,
      platformRaw,
      defaultPlatform(env).replace(/[^A-Za-z0-9._+@-]/g, '_'),
    ),
    restoreKeys,
    localCacheDir,
    remote: parseBoolean(Inputs.Remote, get(Inputs.Remote), true),
    save: parseChoice(Inputs.Save, get(Inputs.Save), SAVE_POLICIES, 'on-success'),
    lookupOnly: parseBoolean(Inputs.LookupOnly, get(Inputs.LookupOnly), false),
    failOnCacheMiss: parseBoolean(Inputs.FailOnCacheMiss, get(Inputs.FailOnCacheMiss), false),
    ...(key !== undefined ? { key } : {}),
  };
  return deepFreeze(config);
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
