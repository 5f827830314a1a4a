/**
 * The trees `bench/action.ts` caches, prepared once under a data directory and reused:
 *
 *   <data>/deps/          a real dependency tree installed from the npm registry (node_modules
 *                         with its package.json and package-lock.json), >= 300 MB, >= 20k files
 *   <data>/build/out/     real build outputs: zstd's C sources (shipped with zstd-napi) compiled
 *                         in many configurations with debug info, objects plus a static library
 *   <data>/random/data/   incompressible bytes in a few files
 *
 * Each is complete once its `ready.json` (the spec it was made for) is written, so an
 * interrupted setup starts over and a rerun reuses what is there. `quick` trees live beside the
 * full ones (`-quick` suffix) and are small, for a smoke run.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type WorkloadName = 'deps' | 'build' | 'random';
export const WORKLOADS: readonly WorkloadName[] = ['deps', 'build', 'random'];

export interface Workload {
  readonly name: WorkloadName;
  readonly title: string;
  /** The directory holding the workspace's files: `cached` and any lockfile beside it. */
  readonly root: string;
  /** The cached path, relative to the workspace (the `path` input of both actions). */
  readonly cached: string;
  /** Files in the workspace besides the cached tree that enter the key (copied in). */
  readonly extras: readonly string[];
  readonly files: number;
  readonly bytes: number;
}

/**
 * Packages whose installed tree passes 300 MB and 20,000 files (~430 MB, ~25k files; exact
 * versions, so reruns install the same tree).
 */
const DEPS_FULL: Record<string, string> = {
  next: '15.5.4',
  react: '19.1.1',
  'react-dom': '19.1.1',
  typescript: '5.9.3',
  '@babel/core': '7.28.4',
  '@babel/preset-env': '7.28.3',
  eslint: '9.36.0',
  webpack: '5.102.0',
  'webpack-cli': '6.0.1',
  jest: '30.2.0',
  '@mui/material': '7.3.2',
  '@emotion/react': '11.14.0',
  '@emotion/styled': '11.14.1',
  lodash: '4.17.21',
  rollup: '4.52.3',
};
const DEPS_QUICK: Record<string, string> = { eslint: '9.36.0', lodash: '4.17.21' };

/** Compiler settings for the build outputs; as many are used as it takes to reach the size. */
const C_CONFIGS = [
  '-O0 -g',
  '-O0 -g3',
  '-Og -g',
  '-Og -g3',
  '-O1 -g3',
  '-O0 -g3 -fPIC',
  '-O0 -g3 -DDEBUGLEVEL=1',
  '-O0 -g3 -fno-inline -DZSTD_MULTITHREAD',
  '-O0 -g3 -fstack-protector-all',
  '-O1 -g3 -fPIC',
  '-O0 -g3 -DZSTD_STRIP_ERROR_STRINGS',
  '-Og -g3 -fPIC',
  '-O0 -g3 -fno-omit-frame-pointer -fPIC',
  '-O2 -g3',
];

interface Spec {
  readonly [k: string]: unknown;
}

async function readyFor(dir: string, spec: Spec): Promise<boolean> {
  try {
    const got = await fs.readFile(path.join(dir, 'ready.json'), 'utf8');
    return got === JSON.stringify(spec);
  } catch {
    return false;
  }
}

async function markReady(dir: string, spec: Spec): Promise<void> {
  await fs.writeFile(path.join(dir, 'ready.json'), JSON.stringify(spec));
  execFileSync('sync');
}

/** Regular files and their total size under `dir` (symlinks counted as files, size 0). */
export async function measureTree(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      files++;
      bytes += (await fs.lstat(path.join(e.parentPath, e.name))).size;
    } else if (e.isSymbolicLink()) files++;
  }
  return { files, bytes };
}

async function prepareDeps(data: string, quick: boolean): Promise<string> {
  const dir = path.join(data, quick ? 'deps-quick' : 'deps');
  const deps = quick ? DEPS_QUICK : DEPS_FULL;
  const spec = { deps };
  if (await readyFor(dir, spec)) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: 'clyde-bench-deps', private: true, dependencies: deps }, null, 2)}\n`,
  );
  const npmCache = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-bench-npm-cache-'));
  try {
    console.log(`setup: npm install of ${Object.keys(deps).length} packages into ${dir}`);
    await run(
      'npm',
      ['install', '--cache', npmCache, '--no-audit', '--no-fund', '--ignore-scripts'],
      { cwd: dir, maxBuffer: 64 << 20 },
    );
  } finally {
    await fs.rm(npmCache, { recursive: true, force: true });
  }
  await markReady(dir, spec);
  return dir;
}

async function compileConfig(out: string, flags: string): Promise<void> {
  const src = path.join(repo, 'node_modules', 'zstd-napi', 'deps', 'zstd', 'lib');
  await fs.mkdir(out, { recursive: true });
  const sources: string[] = [];
  for (const sub of ['common', 'compress', 'decompress']) {
    for (const f of (await fs.readdir(path.join(src, sub))).sort()) {
      if (f.endsWith('.c')) sources.push(path.join(src, sub, f));
    }
  }
  const objects = sources.map((s) => path.join(out, `${path.basename(s, '.c')}.o`));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sources.length) {
      const i = next++;
      const args = [...flags.split(' '), '-I', src, '-I', path.join(src, 'common'), '-c'];
      await run('gcc', [...args, sources[i] as string, '-o', objects[i] as string]);
    }
  };
  await Promise.all([worker(), worker()]);
  await run('ar', ['rcs', path.join(out, 'libzstd.a'), ...objects]);
}

async function prepareBuild(data: string, quick: boolean): Promise<string> {
  const dir = path.join(data, quick ? 'build-quick' : 'build');
  const target = quick ? 10e6 : 110e6;
  const spec = { target, configs: C_CONFIGS };
  if (await readyFor(dir, spec)) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  // The "project": a build script whose text enters the key, like a Makefile would.
  await fs.writeFile(path.join(dir, 'build.txt'), `${C_CONFIGS.join('\n')}\n`);
  let bytes = 0;
  for (const [i, flags] of C_CONFIGS.entries()) {
    if (bytes >= target) break;
    console.log(`setup: compiling zstd with '${flags}'`);
    await compileConfig(path.join(dir, 'out', `config${i}`), flags);
    bytes = (await measureTree(path.join(dir, 'out'))).bytes;
  }
  await markReady(dir, spec);
  return dir;
}

async function prepareRandom(data: string, quick: boolean): Promise<string> {
  const dir = path.join(data, quick ? 'random-quick' : 'random');
  const fileBytes = quick ? 8 << 20 : 64 << 20;
  const count = 4;
  const spec = { fileBytes, count };
  if (await readyFor(dir, spec)) return dir;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.join(dir, 'data'), { recursive: true });
  await fs.writeFile(path.join(dir, 'seed.txt'), 'incompressible\n');
  for (let i = 0; i < count; i++) {
    const fh = await fs.open(path.join(dir, 'data', `random${i}.bin`), 'w');
    for (let left = fileBytes; left > 0; left -= 1 << 20) {
      await fh.write(randomBytes(Math.min(left, 1 << 20)));
    }
    await fh.close();
  }
  await markReady(dir, spec);
  return dir;
}

/** Prepares (or finds) the named workloads under `data`. */
export async function prepareWorkloads(
  data: string,
  names: readonly WorkloadName[],
  quick: boolean,
): Promise<Workload[]> {
  const out: Workload[] = [];
  for (const name of names) {
    let w: Omit<Workload, 'files' | 'bytes'>;
    if (name === 'deps') {
      w = {
        name,
        title: 'installed node_modules (npm registry)',
        root: await prepareDeps(data, quick),
        cached: 'node_modules',
        extras: ['package.json', 'package-lock.json'],
      };
    } else if (name === 'build') {
      w = {
        name,
        title: 'C build outputs (zstd, -O0/-Og/-O1 -g, .o and .a)',
        root: await prepareBuild(data, quick),
        cached: 'out',
        extras: ['build.txt'],
      };
    } else {
      w = {
        name,
        title: 'incompressible random bytes',
        root: await prepareRandom(data, quick),
        cached: 'data',
        extras: ['seed.txt'],
      };
    }
    if (!existsSync(path.join(w.root, w.cached))) {
      throw new Error(`${name}: ${path.join(w.root, w.cached)} is missing after setup`);
    }
    out.push({ ...w, ...(await measureTree(path.join(w.root, w.cached))) });
  }
  return out;
}
