/**
 * The bucket tier end to end (issue 15): this action's dist/ with a bucket (s3rver on loopback,
 * test-support/bucket, the real @aws-sdk/client-s3) beside the same action on the runner-cache
 * path (the loopback cache service), on the same tree of build outputs, through the runner
 * emulation. Each job runs on a fresh "runner" (its own checkout and an empty local store), so
 * every restore comes from the shared tier.
 *
 * Figures per side: a cold save (post's time, bytes uploaded), a restore on a fresh runner
 * (main's time), a save after 1% of the files changed (post's time, bytes uploaded), and the
 * tier's total size after ten saves of slowly changing outputs (1% of the files change each
 * time), i.e. a deduplicated bucket against ten packed tarballs.
 *
 *   npm run bench -- bucket [--quick] [--files N]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBucketServer, type BucketServer } from '../test-support/bucket/index.js';
import { startCacheService, type CacheService } from '../test-support/cache-service/index.js';
import { Job, type StepResult } from '../test-support/runner.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, files: { type: 'string' } },
});
const FILES = Number(values.files ?? (values.quick ? 100 : 1000));
const SAVES = values.quick ? 4 : 10;

function git(cwd: string, ...args: string[]): void {
  execFileSync(
    'git',
    [
      '-c',
      'user.email=b@example.com',
      '-c',
      'user.name=B',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    { cwd, stdio: 'ignore' },
  );
}

/** Build outputs: a third random (object code), the rest text-like (compressible), 4-120 KiB. */
function makeOutputs(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const size = 4096 + ((i * 7919) % 116) * 1024;
    if (i % 3 === 0) return randomBytes(size);
    const line = `symbol_${i}: .quad ${i * 31} ; ${randomBytes(8).toString('hex')}\n`;
    return Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
  });
}

/** 1% of the files (at least one) get new contents. */
function change(outputs: Buffer[], round: number): Buffer[] {
  const step = Math.max(
    1,
    Math.floor(outputs.length / Math.max(1, Math.floor(outputs.length / 100))),
  );
  return outputs.map((b, i) => ((i + round) % step === 0 ? randomBytes(b.length) : b));
}

interface Side {
  readonly name: string;
  inputs(store: string): Record<string, string>;
  env(): Record<string, string>;
  /** Bytes the tier received so far. */
  uploaded(): number;
  /** What the tier holds. */
  size(): Promise<number>;
}

function bucketSide(server: BucketServer): Side {
  return {
    name: 'bucket',
    inputs: () => ({ ...server.inputs('bench'), remote: 'false' }),
    env: () => server.env(),
    uploaded: () => server.uploadedBytes(),
    size: async () => [...(await server.objects())].reduce((a, [, n]) => a + n, 0),
  };
}

function runnerCacheSide(service: CacheService): Side {
  const total = (): number =>
    service
      .entries()
      .filter((e) => e.finalized)
      .reduce((a, e) => a + e.sizeBytes, 0);
  return {
    name: 'runner cache',
    inputs: () => ({ remote: 'true' }),
    env: () => service.env(),
    uploaded: total,
    size: async () => total(),
  };
}

let runners = 0;

async function job(
  root: string,
  checkout: string,
  side: Side,
  source: string,
  files: readonly Buffer[],
): Promise<{ main: StepResult; post: StepResult; mainMs: number; postMs: number }> {
  const dir = path.join(root, `runner-${++runners}`);
  await fs.mkdir(dir);
  git(dir, 'clone', '-q', checkout, 'ws');
  const ws = path.join(dir, 'ws');
  await fs.writeFile(path.join(ws, 'main.c'), source);
  const j = new Job({ workspace: ws, env: side.env() });
  let t = performance.now();
  const main = await j.uses(
    repo,
    { path: 'out', name: 'bench', 'local-cache-dir': path.join(dir, 'store'), ...side.inputs(dir) },
    'cache',
  );
  const mainMs = performance.now() - t;
  await j.run('build', async () => {
    if (main.outputs['cache-hit'] === 'true') return;
    await fs.mkdir(path.join(ws, 'out'), { recursive: true });
    await Promise.all(files.map((b, i) => fs.writeFile(path.join(ws, 'out', `o-${i}.o`), b)));
  });
  t = performance.now();
  const post = (await j.finish())[0] as StepResult;
  const postMs = performance.now() - t;
  await fs.rm(dir, { recursive: true, force: true });
  for (const s of [main, post]) {
    const warned = s.annotations.filter((a) => a.level !== 'notice');
    if (warned.length > 0)
      throw new Error(`${side.name}: ${warned.map((a) => a.message).join('; ')}`);
  }
  return { main, post, mainMs, postMs };
}

const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-bench-bucket-'));
  const server = await startBucketServer();
  const service = await startCacheService({ dataDir: path.join(root, 'service') });
  try {
    const checkout = path.join(root, 'origin');
    await fs.mkdir(checkout);
    await fs.writeFile(path.join(checkout, 'main.c'), 'int main(void) { return 0; }\n');
    await fs.writeFile(path.join(checkout, '.gitignore'), 'out/\n');
    git(checkout, 'init', '-q');
    git(checkout, 'add', '-A');
    git(checkout, 'commit', '-q', '-m', 'bench');
    const gen0 = makeOutputs(FILES);
    const treeBytes = gen0.reduce((a, b) => a + b.length, 0);
    console.log(
      `tree: ${FILES} files, ${mb(treeBytes)}; ${SAVES} saves, 1% of the files changed each\n`,
    );

    const rows: string[][] = [];
    for (const side of [bucketSide(server), runnerCacheSide(service)]) {
      const src = (n: number): string => `int main(void) { return ${n}; } /* ${side.name} */\n`;
      let up = side.uploaded();
      const cold = await job(root, checkout, side, src(0), gen0);
      const coldBytes = side.uploaded() - up;
      const restore = await job(root, checkout, side, src(0), []);
      if (restore.main.outputs['cache-hit'] !== 'true') throw new Error(`${side.name}: no hit`);
      let outputs = gen0;
      let changedMs = 0;
      let changedBytes = 0;
      for (let round = 1; round < SAVES; round++) {
        outputs = change(outputs, round);
        up = side.uploaded();
        const r = await job(root, checkout, side, src(round), outputs);
        if (round === 1) {
          changedMs = r.postMs;
          changedBytes = side.uploaded() - up;
        }
      }
      rows.push([
        side.name,
        sec(cold.postMs),
        mb(coldBytes),
        sec(restore.mainMs),
        sec(changedMs),
        mb(changedBytes),
        mb(await side.size()),
      ]);
    }
    const head = [
      'tier',
      'cold save (post)',
      'uploaded',
      'restore, fresh runner (main)',
      '1%-changed save (post)',
      'uploaded',
      `tier size after ${SAVES} saves`,
    ];
    console.log(`| ${head.join(' | ')} |`);
    console.log(`|${head.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    await server.close();
    await service.close();
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
