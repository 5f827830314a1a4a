/**
 * Packages: a workspace file (default `.clyde/cache.yml`, or the text of a `packages` input)
 * declares several packages, each with its sources, outputs, configuration and the packages it
 * depends on. Each package gets its own key, which holds one `dep:<name>` component per direct
 * dependency carrying that dependency's key hash: a change reaches every package that depends
 * on it, transitively, and no other.
 *
 * ```yaml
 * packages:
 *   core: { sources: [core/**], outputs: [core/build], config: { cflags: -O2 } }
 *   lib:  { sources: [lib/**], outputs: [lib/build], depends: [core] }
 * ```
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, parseDocument, stringify, type Node } from 'yaml';
import { InputError } from '../errors.js';
import { compareBytes, sortBytes, toPosix } from '../util/bytes.js';
import { composeKey, keyEnvironment } from './compose.js';
import type { CacheKey, KeyInputs } from './types.js';

/** Where computeKey's callers look for a workspace file, relative to the workspace. */
export const DEFAULT_WORKSPACE_FILE = '.clyde/cache.yml';

export interface PackageSpec {
  readonly name: string;
  /** Globs relative to the workspace (@actions/glob semantics); never empty. */
  readonly sources: readonly string[];
  /** Relative posix paths of the package's outputs (what is cached). */
  readonly outputs: readonly string[];
  /** Direct dependencies, byte-order sorted. */
  readonly depends: readonly string[];
  /** Config text (a mapping is kept as YAML text); absent: the default config. */
  readonly config?: string;
  readonly version?: string;
  readonly variant?: string;
  /** Lockfiles relative to the workspace; [] when absent. */
  readonly lockfiles: readonly string[];
}

export interface WorkspaceSpec {
  /** Where it came from, for messages (a path or "input 'packages'"). */
  readonly source: string;
  /** Topological order: every package after its dependencies (ties in byte order of name). */
  readonly packages: readonly PackageSpec[];
}

export interface PackageKey {
  readonly name: string;
  /** The package's version and variant (its own, else the defaults). */
  readonly version: string;
  readonly variant: string;
  readonly outputs: readonly string[];
  readonly depends: readonly string[];
  readonly key: CacheKey;
}

/** What all packages share. */
export type CommonKeyInputs = Omit<
  KeyInputs,
  'sources' | 'name' | 'paths' | 'excludePaths' | 'config' | 'lockfiles' | 'version' | 'variant'
> & {
  /** For packages that do not set their own (version and variant default to ''). */
  readonly defaults?: {
    readonly version?: string;
    readonly variant?: string;
    readonly config?: string;
  };
  /** More paths that are never sources (absolute, or relative to the workspace). */
  readonly excludePaths?: readonly string[];
  /** Key names are `<namePrefix>/<package>` when set, else the package name. */
  readonly namePrefix?: string;
};

const FIELDS = ['sources', 'outputs', 'config', 'version', 'variant', 'lockfiles', 'depends'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Reads `file` (default `.clyde/cache.yml`) under `workspace`; undefined when it is absent. */
export async function readWorkspaceFile(
  workspace: string,
  file = DEFAULT_WORKSPACE_FILE,
): Promise<WorkspaceSpec | undefined> {
  const abs = path.resolve(workspace, file);
  let text: string;
  try {
    text = await fs.readFile(abs, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError('packages', `cannot read ${file}: ${(err as Error).message}`);
  }
  return parseWorkspace(text, file);
}

/** Validates a workspace file; every problem is an InputError('packages') naming `source`. */
export function parseWorkspace(text: string, source: string): WorkspaceSpec {
  const fail = (message: string): never => {
    throw new InputError('packages', `${source}: ${message}`);
  };
  const doc = parseDocument(text, { uniqueKeys: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) fail(`not valid YAML: ${problem.message.split('\n')[0] ?? ''}`);
  const root = doc.contents;
  if (!isMap(root)) return fail('not a mapping with a `packages` key');
  const top = root.toJSON() as Record<string, unknown>;
  for (const k of Object.keys(top)) {
    if (k !== 'packages') fail(`unknown field '${k}' (only 'packages' is allowed at the top)`);
  }
  const packagesNode = root.get('packages', true) as Node | undefined;
  if (!isMap(packagesNode) || packagesNode.items.length === 0) {
    return fail('`packages` must be a mapping of package names to their settings');
  }

  const specs = new Map<string, PackageSpec>();
  for (const pair of packagesNode.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!NAME.test(name)) {
      fail(
        `'${name}' is not a package name (letters, digits, '.', '_', '-', starting with a ` +
          `letter or digit, at most 100 characters)`,
      );
    }
    const where = `package '${name}'`;
    const body = pair.value as Node | null;
    if (!isMap(body)) return fail(`${where} must be a mapping (sources, outputs, ...)`);
    const raw = body.toJSON() as Record<string, unknown>;
    for (const k of Object.keys(raw)) {
      if (!FIELDS.includes(k)) fail(`${where}: unknown field '${k}' (known: ${FIELDS.join(', ')})`);
    }
    const list = (field: string): string[] => {
      const v = raw[field];
      if (v === undefined || v === null) return [];
      const items = Array.isArray(v) ? v : [v];
      return items.map((item: unknown) => {
        if (typeof item !== 'string' || item.trim() === '') {
          return fail(`${where}: '${field}' must be a list of non-empty strings`);
        }
        return item.trim();
      });
    };
    const scalar = (field: string): string | undefined => {
      const v = raw[field];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string' && typeof v !== 'number') {
        return fail(`${where}: '${field}' must be a string`);
      }
      return String(v);
    };
    const sources = list('sources');
    if (sources.length === 0) fail(`${where} has no sources`);
    const outputs = list('outputs').map((o) => {
      const norm = path.posix.normalize(toPosix(o));
      if (path.isAbsolute(o) || /^[A-Za-z]:/.test(o) || norm === '..' || norm.startsWith('../')) {
        return fail(`${where}: output '${o}' must be a path inside the workspace`);
      }
      if (norm === '.' || norm === '')
        return fail(`${where}: output '${o}' is the whole workspace`);
      return norm.replace(/\/$/, '');
    });
    const configNode = body.get('config', true) as Node | undefined;
    let config: string | undefined;
    if (isMap(configNode)) config = stringify(configNode);
    else if (configNode !== undefined && configNode !== null) config = scalar('config');
    const version = scalar('version');
    const variant = scalar('variant');
    specs.set(name, {
      name,
      sources,
      outputs,
      depends: sortBytes(new Set(list('depends'))),
      ...(config !== undefined ? { config } : {}),
      ...(version !== undefined ? { version } : {}),
      ...(variant !== undefined ? { variant } : {}),
      lockfiles: list('lockfiles'),
    });
  }

  for (const spec of specs.values()) {
    for (const dep of spec.depends) {
      if (!specs.has(dep))
        fail(`package '${spec.name}' depends on '${dep}', which is not declared`);
      if (dep === spec.name) fail(`package '${spec.name}' depends on itself`);
    }
  }
  checkOutputs([...specs.values()], fail);
  return { source, packages: topologicalOrder(specs, fail) };
}

/** Two packages may not share an output path or have one inside the other's. */
function checkOutputs(specs: readonly PackageSpec[], fail: (m: string) => never): void {
  const all = specs.flatMap((s) => s.outputs.map((o) => ({ pkg: s.name, out: o })));
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i] as { pkg: string; out: string };
      const b = all[j] as { pkg: string; out: string };
      if (a.pkg === b.pkg) continue;
      const inside = (x: string, y: string) => x === y || x.startsWith(`${y}/`);
      if (inside(a.out, b.out) || inside(b.out, a.out)) {
        fail(
          `the outputs of '${a.pkg}' (${a.out}) and '${b.pkg}' (${b.out}) overlap; each path ` +
            `must belong to one package`,
        );
      }
    }
  }
}

/** Depth-first, names in byte order; a cycle is an error naming it (`a -> b -> a`). */
function topologicalOrder(
  specs: ReadonlyMap<string, PackageSpec>,
  fail: (m: string) => never,
): PackageSpec[] {
  const out: PackageSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      fail(`the dependencies form a cycle: ${cycle.join(' -> ')}`);
    }
    state.set(name, 'visiting');
    stack.push(name);
    const spec = specs.get(name) as PackageSpec;
    for (const dep of spec.depends) visit(dep);
    stack.pop();
    state.set(name, 'done');
    out.push(spec);
  };
  for (const name of [...specs.keys()].sort(compareBytes)) visit(name);
  return out;
}

/**
 * One key per package, in topological order. Git runs once and every file is hashed at most
 * once for all packages. Each package's sources exclude every package's outputs (its own
 * included), the common excludePaths, and its own lockfiles (which are components).
 */
export async function computePackageKeys(
  spec: WorkspaceSpec,
  common: CommonKeyInputs,
): Promise<PackageKey[]> {
  const workspace = path.resolve(common.workspace);
  const env = await keyEnvironment(workspace, common);
  const outputs = spec.packages.flatMap((p) => p.outputs.map((o) => path.resolve(workspace, o)));
  const excludePaths = [...outputs, ...(common.excludePaths ?? [])];
  const keys = new Map<string, CacheKey>();
  const out: PackageKey[] = [];
  for (const pkg of spec.packages) {
    const deps = new Map(pkg.depends.map((d) => [d, keys.get(d) as CacheKey]));
    const version = pkg.version ?? common.defaults?.version ?? '';
    const variant = pkg.variant ?? common.defaults?.variant ?? '';
    let key: CacheKey;
    try {
      key = await composeKey(env, {
        name: common.namePrefix !== undefined ? `${common.namePrefix}/${pkg.name}` : pkg.name,
        version,
        variant,
        paths: pkg.outputs,
        keepOutsideLinks: common.keepOutsideLinks,
        config: pkg.config ?? common.defaults?.config ?? '',
        lockfiles: pkg.lockfiles,
        sources: pkg.sources,
        excludePaths,
        deps,
      });
    } catch (err) {
      if (err instanceof InputError) {
        throw new InputError('packages', `${spec.source}, package '${pkg.name}': ${err.message}`);
      }
      throw err;
    }
    keys.set(pkg.name, key);
    out.push({
      name: pkg.name,
      version,
      variant,
      outputs: pkg.outputs,
      depends: pkg.depends,
      key,
    });
  }
  return out;
}
