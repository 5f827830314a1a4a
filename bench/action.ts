/**
 * End-to-end benchmark (issue 14): this action's dist/ against actions/cache, as the user runs
 * them. Both are JavaScript actions run by the runner emulation (test-support/runner.ts `Job`:
 * main, then post, each its own Node 24 process) against one loopback runner-cache service
 * (test-support/cache-service); the baseline is bench/baseline/ (a thin wrapper of
 * `@actions/cache`'s restoreCache/saveCache, run from build/). Sides alternate within a run
 * (AB, BA, ...); each ratio is the median of the runs' own ratios.
 *
 * Scenarios, per workload (bench/action-workloads.ts):
 *   1. cold job: main misses, post saves (post, and main+post)
 *   2. restore on a fresh runner, empty local store: plain GET, and the Azure SDK path
 *      `@actions/cache` takes for `*.blob.core.windows.net` URLs (the service hands out such
 *      URLs and answers as the HTTP proxy the client is pointed at)
 *   3. restore from a warm local store (this action) vs actions/cache's remote restore
 *      (the baseline has no local tier: its figure is its plain remote restore of scenario 2)
 *   4. a fresh runner restores the previous entry through a restore key, 1% of the files change,
 *      post saves: post's time and the bytes uploaded (the service's finalized entry sizes)
 * Jobs run as on a GitHub-hosted runner (RUNNER_ENVIRONMENT=github-hosted: this action keeps no
 * local store there), but for scenario 3, a self-hosted runner whose store outlives the job.
 * Before each timed job: outputs removed, `sync`, page cache dropped (root only), the job's
 * inputs (the tree to save, the service's stored entry, the warm store) read back in.
 *
 *   npm run bench -- action [--runs N] [--quick] [--data DIR] [--workloads deps,build,random]
 *
 * --quick: small workloads, one run (a smoke run). Data (installed trees, build outputs) is kept
 * under --data (default ~/.cache/clyde-bench) and reused; the work directory is removed.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCacheService, type CacheService } from '../test-support/cache-service/index.js';
import { Job, type StepResult } from '../test-support/runner.js';
import {
  measureTree,
  prepareWorkloads,
  WORKLOADS,
  type Workload,
  type WorkloadName,
} from './action-workloads.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASELINE_ACTION = path.join(repo, 'bench', 'baseline');
/** The Azure-looking origin of download URLs in the Azure SDK scenario. */
const AZURE_ORIGIN = 'http://clydebench.blob.core.windows.net';
const isRoot = process.getuid?.() === 0;

type SideName = 'clyde' | 'actions/cache';

interface Figures {
  coldPost: number;
  coldTotal: number;
  coldEntryBytes: number;
  restorePlain: number;
  restoreAzure: number;
  /** clyde: from its warm local store; actions/cache: its plain remote restore again. */
  restoreWarm: number;
  changedPost: number;
  changedBytes: number;
}

class BenchError extends Error {
  override name = 'BenchError';
}

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** `sync`, drop the page cache (root only), then read every file of `inputs` back in. */
async function settle(inputs: string[]): Promise<void> {
  sh('sync', []);
  if (isRoot) await fs.writeFile('/proc/sys/vm/drop_caches', '3');
  for (const dir of inputs) {
    execFileSync('sh', [
      '-c',
      'find "$1" -type f -print0 | xargs -0 -r cat > /dev/null',
      'sh',
      dir,
    ]);
  }
}

async function timedStep<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function git(cwd: string, ...args: string[]): void {
  sh('git', ['-c', 'user.email=bench@example.com', '-c', 'user.name=bench', '-C', cwd, ...args]);
}

/**
 * A checkout: the workload's extra files and `rev.txt` committed, the cached path ignored; with
 * `withTree`, the cached tree in place (hard links to the data copy: the same bytes on disk,
 * never written by either side).
 */
async function checkout(w: Workload, dir: string, rev: number, withTree: boolean): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const f of w.extras) await fs.copyFile(path.join(w.root, f), path.join(dir, f));
  await fs.writeFile(path.join(dir, 'rev.txt'), `${rev}\n`);
  await fs.writeFile(path.join(dir, '.gitignore'), `/${w.cached}/\n`);
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'checkout');
  if (withTree) sh('cp', ['-al', path.join(w.root, w.cached), path.join(dir, w.cached)]);
}

/** What a workflow would write as the baseline's key: a hash of the files the build depends on. */
async function baselineKey(w: Workload, dir: string, tag: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of [...w.extras, 'rev.txt']) h.update(await fs.readFile(path.join(dir, f)));
  return `${w.name}-${tag}-${h.digest('hex').slice(0, 16)}`;
}

interface JobTimes {
  main: StepResult;
  post: StepResult | undefined;
  mainSeconds: number;
  postSeconds: number;
}

function problems(step: StepResult | undefined): string[] {
  if (!step || step.skipped) return [];
  const out = step.annotations
    .filter((a) => a.level !== 'notice')
    .map((a) => `${step.phase} ${a.level}: ${a.message}`);
  if (step.exitCode !== 0) out.push(`${step.phase} exited with ${step.exitCode}`);
  return out;
}

/** A step's phase-time row from its summary (`Key 0.10 s, Download 1.20 s, ...`). */
function phases(step: StepResult): string {
  const m = /<table><tr><th>Phase<\/th>(.*?)<\/tr><tr><td>Time<\/td>(.*?)<\/tr><\/table>/.exec(
    step.summary,
  );
  if (!m) return '(no phase table)';
  const cells = (row: string) => [...row.matchAll(/<t[hd]>(.*?)<\/t[hd]>/g)].map((c) => c[1]);
  const times = cells(m[2] as string);
  return cells(m[1] as string)
    .map((name, i) => `${name} ${times[i] ?? '?'}`)
    .join(', ');
}

class Bench {
  constructor(
    private readonly service: CacheService,
    private readonly work: string,
    private readonly tag: string,
  ) {}

  /** One job of `side` in `ws`: main, an optional `run:` step, post. */
  private async job(
    side: SideName,
    w: Workload,
    ws: string,
    store: string,
    opts: { azure?: boolean; between?: () => Promise<void>; selfHosted?: boolean } = {},
  ): Promise<JobTimes> {
    this.service.setDownloadOrigin(opts.azure ? AZURE_ORIGIN : undefined);
    const env = {
      ...this.service.env(),
      ...(opts.azure ? this.service.proxyEnv() : {}),
      // Where most users are, unless the scenario is about a disk that outlives the job.
      RUNNER_ENVIRONMENT: opts.selfHosted ? 'self-hosted' : 'github-hosted',
    };
    const job = new Job({ workspace: ws, env, stepTimeoutMs: 20 * 60 * 1000 });
    let action: string;
    let inputs: Record<string, string>;
    if (side === 'clyde') {
      action = repo;
      inputs = { path: w.cached, name: `bench-${w.name}`, 'local-cache-dir': store };
    } else {
      const key = await baselineKey(w, ws, this.tag);
      action = BASELINE_ACTION;
      inputs = { path: w.cached, key, 'restore-keys': `${w.name}-${this.tag}-` };
    }
    const main = await timedStep(() => job.uses(action, inputs, 'cache'));
    if (opts.between) await job.run('change files', opts.between);
    const post = await timedStep(() => job.finish());
    if (side === 'clyde' && process.env['CLYDE_BENCH_PHASES'] === '1') {
      const label = `${w.name} ${path.basename(ws)}`;
      process.stderr.write(`  ${label} main ${main.seconds.toFixed(2)} s: ${phases(main.value)}\n`);
      for (const p of post.value) {
        process.stderr.write(`  ${label} post ${post.seconds.toFixed(2)} s: ${phases(p)}\n`);
      }
    }
    const found = [...problems(main.value), ...post.value.flatMap((p) => problems(p))];
    if (found.length > 0) {
      throw new BenchError(`${side} on ${w.name}:\n  ${found.join('\n  ')}`);
    }
    return {
      main: main.value,
      post: post.value[0],
      mainSeconds: main.seconds,
      postSeconds: post.seconds,
    };
  }

  private finalized(): { id: number; sizeBytes: number; file: string }[] {
    return this.service.entries().filter((e) => e.finalized);
  }

  private async expectRestored(side: SideName, w: Workload, ws: string, what: string) {
    const got = await measureTree(path.join(ws, w.cached));
    if (got.files !== w.files || got.bytes !== w.bytes) {
      throw new BenchError(
        `${side} ${what} on ${w.name}: restored ${got.files} files / ${got.bytes} bytes, expected ${w.files} / ${w.bytes}`,
      );
    }
  }

  /** Every scenario for one side, in a fresh service; returns its figures. */
  async side(side: SideName, w: Workload, azure: boolean): Promise<Figures> {
    this.service.reset();
    const dir = path.join(this.work, 'side');
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    const warmStore = path.join(dir, 'store-warm');
    const fresh = (name: string) => path.join(dir, name);
    const done = async (...paths: string[]) => {
      for (const p of paths) await fs.rm(p, { recursive: true, force: true });
    };

    // 1. cold job
    const cold = fresh('ws-cold');
    await checkout(w, cold, 1, true);
    await settle([path.join(cold, w.cached)]);
    const c = await this.job(side, w, cold, warmStore);
    const entries = this.finalized();
    if (entries.length !== 1) throw new BenchError(`${side} cold job on ${w.name}: no entry saved`);
    await done(cold);
    const blobs = () => this.finalized().map((e) => e.file);

    // 2. restore on a fresh runner: plain GET, then the Azure SDK path
    const restore = async (name: string, store: string, useAzure: boolean): Promise<number> => {
      const ws = fresh(name);
      await checkout(w, ws, 1, false);
      const warm = store === warmStore;
      await settle(warm ? [warmStore] : blobs());
      const r = await this.job(side, w, ws, store, { azure: useAzure, selfHosted: warm });
      if (r.main.outputs['cache-hit'] !== 'true') {
        throw new BenchError(`${side} ${name} on ${w.name}: cache-hit is not true`);
      }
      await this.expectRestored(side, w, ws, name);
      await done(ws);
      return r.mainSeconds;
    };
    const restorePlain = await restore('ws-plain', fresh('store-plain'), false);
    await done(fresh('store-plain'));
    const restoreAzure = azure ? await restore('ws-azure', fresh('store-azure'), true) : NaN;
    await done(fresh('store-azure'));

    // 3. warm local store (this action, on a self-hosted runner, whose store an untimed
    // restore filled first); the baseline has only the remote tier
    if (side === 'clyde') {
      const prime = fresh('ws-prime');
      await checkout(w, prime, 1, false);
      await this.job(side, w, prime, warmStore, { selfHosted: true });
      await done(prime);
    }
    const restoreWarm =
      side === 'clyde' ? await restore('ws-warm', warmStore, false) : restorePlain;
    await done(warmStore);

    // 4. fresh runner, restore-key fallback, 1% of the files changed, save
    const ws4 = fresh('ws-changed');
    await checkout(w, ws4, 2, false);
    await settle(blobs());
    const before = new Set(entries.map((e) => e.id));
    const changed = await this.job(side, w, ws4, fresh('store-changed'), {
      between: async () => {
        if (!existsSync(path.join(ws4, w.cached))) throw new Error('nothing was restored');
        await changeOnePercent(path.join(ws4, w.cached));
      },
    });
    const added = this.finalized().filter((e) => !before.has(e.id));
    if (added.length !== 1) {
      throw new BenchError(`${side} 1%-changed job on ${w.name}: ${added.length} entries saved`);
    }
    await done(ws4, fresh('store-changed'));

    return {
      coldPost: c.postSeconds,
      coldTotal: c.mainSeconds + c.postSeconds,
      coldEntryBytes: (entries[0] as { sizeBytes: number }).sizeBytes,
      restorePlain,
      restoreAzure,
      restoreWarm,
      changedPost: changed.postSeconds,
      changedBytes: (added[0] as { sizeBytes: number }).sizeBytes,
    };
  }
}

/** Appends a few random bytes to every 100th regular file (sorted; at least one file). */
async function changeOnePercent(dir: string): Promise<void> {
  const files: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) files.push(path.join(e.parentPath, e.name));
  }
  files.sort();
  const step = Math.min(100, files.length);
  for (let i = 0; i < files.length; i += step) {
    await fs.appendFile(files[i] as string, randomBytes(16));
  }
}

const ROWS: { label: string; field: keyof Figures; bytes?: boolean }[] = [
  { label: '1. cold job: post (save)', field: 'coldPost' },
  { label: '1. cold job: main + post', field: 'coldTotal' },
  { label: '   entry size after the cold save', field: 'coldEntryBytes', bytes: true },
  { label: '2. fresh runner, remote restore, plain GET', field: 'restorePlain' },
  { label: '2. fresh runner, remote restore, Azure SDK path', field: 'restoreAzure' },
  { label: '3. warm local store (baseline: remote restore)', field: 'restoreWarm' },
  { label: '4. 1%-changed save: post', field: 'changedPost' },
  { label: '   bytes uploaded by that save', field: 'changedBytes', bytes: true },
];

function fmtBytes(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function printTable(w: Workload, pairs: { clyde: Figures; base: Figures }[]): void {
  console.log(
    `\n### ${w.name}: ${w.title}; ${w.files} files, ${fmtBytes(w.bytes)}; ${pairs.length} run(s)\n`,
  );
  console.log('| scenario | clyde-cache | actions/cache | ratio (median of pairs) |');
  console.log('|---|---:|---:|---:|');
  for (const row of ROWS) {
    const a = pairs.map((p) => p.clyde[row.field]);
    const b = pairs.map((p) => p.base[row.field]);
    if (a.some(Number.isNaN)) continue;
    const ratio = median(pairs.map((p) => p.clyde[row.field] / p.base[row.field]));
    const fmt = (x: number) => (row.bytes ? fmtBytes(x) : `${x.toFixed(2)} s`);
    console.log(`| ${row.label} | ${fmt(median(a))} | ${fmt(median(b))} | ${ratio.toFixed(2)}x |`);
  }
  if (process.env['CLYDE_BENCH_SAMPLES'] === '1') {
    for (const [i, p] of pairs.entries()) console.log(`run ${i + 1}: ${JSON.stringify(p)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      data: { type: 'string' },
      workloads: { type: 'string' },
      'no-azure': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  const quick = values.quick === true;
  const runs = Number.parseInt(values.runs ?? (quick ? '1' : '5'), 10);
  if (!Number.isInteger(runs) || runs < 1)
    throw new BenchError('--runs must be a whole number >= 1');
  const names = (values.workloads?.split(',') ?? [...WORKLOADS]) as WorkloadName[];
  for (const n of names) {
    if (!WORKLOADS.includes(n))
      throw new BenchError(`--workloads: '${n}' is not one of ${WORKLOADS.join(', ')}`);
  }
  for (const f of [
    'dist/restore/index.js',
    'dist/save/index.js',
    'build/bench/baseline/restore.js',
  ]) {
    if (!existsSync(path.join(repo, f)))
      throw new BenchError(`${f} is missing: run \`npm run bundle\` first`);
  }
  const data = path.resolve(values.data ?? path.join(os.homedir(), '.cache', 'clyde-bench'));
  const workloads = await prepareWorkloads(data, names, quick);
  console.log(
    `${runs} run(s), sides alternating; ${isRoot ? 'page cache dropped before each job' : 'not root: page cache NOT dropped'}; ${os.cpus().length} CPUs`,
  );

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-bench-action-'));
  const service = await startCacheService({ dataDir: path.join(work, 'service') });
  // An interrupted run leaves no work directory behind (the step in flight dies with it).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  }
  try {
    for (const w of workloads) {
      const pairs: { clyde: Figures; base: Figures }[] = [];
      for (let r = 0; r < runs; r++) {
        const bench = new Bench(service, work, `r${r}`);
        const order: SideName[] =
          r % 2 === 0 ? ['clyde', 'actions/cache'] : ['actions/cache', 'clyde'];
        const got: Partial<Record<SideName, Figures>> = {};
        for (const side of order) {
          process.stderr.write(`${w.name} run ${r + 1}/${runs}: ${side}\n`);
          got[side] = await bench.side(side, w, values['no-azure'] !== true);
        }
        pairs.push({ clyde: got.clyde as Figures, base: got['actions/cache'] as Figures });
      }
      printTable(w, pairs);
    }
  } finally {
    await service.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  console.error(error instanceof BenchError ? error.message : error);
  process.exit(1);
}
