/**
 * Store benchmark (issue 4, "what it must show" 5): the local store against what actions/cache
 * runs, side by side in one run, on a few hundred MB of real installed dependency files (copies
 * of this repository's node_modules, built once under os.tmpdir() and reused).
 *
 *   first save        LocalStore.save            vs  tar --posix -cf - . | zstd -T0 -3 -o x.tzst
 *   restore           LocalStore.restore                          vs  zstd -d -c x.tzst | tar -x
 *   1%-changed save   a second save after 1% of the files changed (basis: the first entry)
 *   sizes             compressed sizes, bytes written, dedup across the two versions
 *
 * Each measured side starts after `sync` and writes to fresh paths: nothing is deleted between
 * measurements (deleting a tree of many files makes the next write-heavy run several seconds
 * slower on this machine, whichever side runs next); everything is removed at the end.
 * Seconds are medians of RUNS; each ratio is the median of the runs' own ratios (a side and its
 * baseline measured in the same run), since the machine's speed drifts between runs.
 *
 * Run alone: `node build/bench/store.js` (Node 24); CLYDE_BENCH_SAMPLES=1 also prints every
 * run's seconds (the write-heavy rows vary a lot on small VMs: judge medians by their spread).
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zstdContent, zstdFrame } from '../test-support/store/zstd.js';
import { LocalStore } from '../src/store/index.js';
import type { SaveStats } from '../src/store/types.js';

export interface BenchRow {
  readonly name: string;
  /** Median seconds (undefined for size-only rows). */
  readonly seconds?: number;
  /** Median seconds of the baseline it is compared with. */
  readonly baseline?: number;
  /** seconds / baseline (lower is better). */
  readonly ratio?: number;
  readonly bytes?: number;
  readonly note?: string;
}

const RUNS = Number.parseInt(process.env['CLYDE_BENCH_RUNS'] ?? '3', 10);
const TARGET_BYTES = 300 * 1024 * 1024;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = path.join(os.tmpdir(), 'clyde-bench-store');
const tree = path.join(work, 'tree');

function sh(cmd: string): void {
  execSync(cmd, { stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/sh' });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function duSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await fs.stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

/** Copies of node_modules until the tree holds ~300 MB; reused when already there. */
async function buildTree(): Promise<void> {
  if (existsSync(path.join(tree, '.complete'))) return;
  await fs.rm(tree, { recursive: true, force: true });
  await fs.mkdir(tree, { recursive: true });
  const src = path.join(repo, 'node_modules');
  const one = await duSize(src);
  const copies = Math.max(1, Math.round(TARGET_BYTES / one));
  for (let i = 0; i < copies; i++) {
    execFileSync('cp', ['-a', src, path.join(tree, `copy${i}`)]);
  }
  await fs.writeFile(path.join(tree, '.complete'), '');
}

/** Clears `dirs`, syncs, then times `fn`. */
async function timed(clear: string[], fn: () => Promise<void> | void): Promise<number> {
  for (const d of clear) await fs.rm(d, { recursive: true, force: true, maxRetries: 2 });
  sh('sync');
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out.sort();
}

/** Codec throughput in memory, one thread, level 3: the measurement the backend choice rests on. */
async function codecRows(): Promise<BenchRow[]> {
  const files = (await listFiles(tree)).slice(0, 4000);
  const bufs = await Promise.all(files.map((f) => fs.readFile(f)));
  const all = Buffer.concat(bufs).subarray(0, 64 * 1024 * 1024);
  const rows: BenchRow[] = [];
  for (const backend of ['native', 'node'] as const) {
    let t0 = process.hrtime.bigint();
    const frame = zstdFrame(all, backend);
    const ct = Number(process.hrtime.bigint() - t0) / 1e9;
    t0 = process.hrtime.bigint();
    zstdContent(frame, backend);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const mb = all.length / 1e6;
    rows.push({
      name: `codec ${backend === 'native' ? 'zstd-napi' : 'node:zlib'}`,
      seconds: ct,
      bytes: frame.length,
      note: `compress ${(mb / ct).toFixed(0)} MB/s, decompress ${(mb / dt).toFixed(0)} MB/s (1 thread, 64 MB)`,
    });
  }
  return rows;
}

export async function benchStore(): Promise<BenchRow[]> {
  await buildTree();
  const inputBytes = await duSize(tree);
  const fileCount = (await listFiles(tree)).length;
  const scratch = path.join(work, 'runs');
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.mkdir(scratch, { recursive: true });
  let tzst = '';
  const base = {
    package: 'bench',
    version: '1',
    platform: 'linux-x64',
    variant: 'release',
  };
  const t = {
    tarSave: [] as number[],
    save: [] as number[],
    tarRestore: [] as number[],
    copy: [] as number[],
    second: [] as number[],
  };
  let stored = 0;
  let secondStats: SaveStats | undefined;
  let changedBytes = 0;
  let changedFiles = 0;
  let dedup = 0;
  let storeOnDisk = 0;
  let entryBytes = 0;

  for (let run = 0; run < RUNS; run++) {
    const at = (name: string): string => path.join(scratch, `${run}-${name}`);
    tzst = at('x.tzst');
    const storeDir = at('store');
    const outTar = at('out-tar');
    const ws = at('ws');
    t.tarSave.push(
      await timed([tzst], () =>
        sh(`tar --posix -cf - -C '${tree}' . | zstd -T0 -3 -q -o '${tzst}'`),
      ),
    );
    let store: LocalStore | undefined;
    const key1 = `clyde-bench-linux-x64-release-${'a'.repeat(16)}`;
    t.save.push(
      await timed([storeDir], async () => {
        store = await LocalStore.open(storeDir);
        const r = await store.save({
          ...base,
          key: key1,
          hash: 'a'.repeat(16),
          roots: [{ name: 'out', absPath: tree }],
        });
        stored = r.newBytes;
      }),
    );
    const s = store as unknown as LocalStore;
    entryBytes = (await s.get(key1))?.storedBytes ?? 0;

    t.tarRestore.push(
      await timed([outTar], async () => {
        await fs.mkdir(outTar, { recursive: true });
        sh(`zstd -d -q -c '${tzst}' | tar -xf - -C '${outTar}'`);
      }),
    );
    t.copy.push(
      await timed([], async () => {
        await s.restore(key1, [{ name: 'out', absPath: at('out-copy') }]);
      }),
    );

    // The 1%-changed save: restore the entry into a workspace (as main would), change 1% of
    // the files (every 100th, appending a line), save the new version with the first as basis.
    const wsOut = path.join(ws, 'out');
    await s.restore(key1, [{ name: 'out', absPath: wsOut }]);
    const files = await listFiles(wsOut);
    changedBytes = 0;
    changedFiles = 0;
    for (let i = 0; i < files.length; i += 100) {
      const f = files[i] as string;
      await fs.chmod(f, 0o644);
      await fs.appendFile(f, `\n// changed in run ${run}\n`);
      changedBytes += (await fs.stat(f)).size;
      changedFiles++;
    }
    await new Promise((r) => setTimeout(r, 100)); // past the stat cache's racy window
    const key2 = `clyde-bench-linux-x64-release-${'b'.repeat(16)}`;
    t.second.push(
      await timed([], async () => {
        await s.save({
          ...base,
          key: key2,
          hash: 'b'.repeat(16),
          roots: [{ name: 'out', absPath: wsOut }],
          basis: key1,
          onStats: (st) => {
            secondStats = st;
          },
        });
      }),
    );
    const e2 = await s.get(key2);
    storeOnDisk = await duSize(path.join(storeDir, 'blobs'));
    dedup = (entryBytes + (e2?.storedBytes ?? 0)) / storeOnDisk;
  }

  // Size without grouping (one blob per file), once, for the record.
  const plainDir = path.join(scratch, 'store-plain');
  let plainBytes = 0;
  await timed([plainDir], async () => {
    const p = await LocalStore.open(plainDir);
    plainBytes = (
      await p.save({
        ...base,
        key: 'plain',
        hash: 'c'.repeat(16),
        roots: [{ name: 'out', absPath: tree }],
        groupSmallFiles: false,
      })
    ).newBytes;
  });
  if (process.env['CLYDE_BENCH_SAMPLES'] === '1') {
    // Every run's seconds, for judging the spread behind each median.
    console.error(JSON.stringify(t));
  }
  const tzstBytes = (await fs.stat(tzst)).size;
  execFileSync('chmod', ['-R', 'u+w', scratch]);
  await fs.rm(scratch, { recursive: true, force: true });
  // The ratio is the median of each run's own pair (this side / the baseline measured in the
  // same run, minutes apart at most), which drifts far less than either side's seconds.
  const row = (name: string, xs: number[], base: number[], note?: string): BenchRow => {
    const ratio = median(xs.map((x, i) => x / (base[i] as number)));
    return {
      name,
      seconds: median(xs),
      baseline: median(base),
      ratio,
      ...(note ? { note } : {}),
    };
  };
  const st = secondStats;
  return [
    {
      name: 'input',
      bytes: inputBytes,
      note: `${fileCount} files under ${tree}`,
    },
    row('first save', t.save, t.tarSave, 'vs tar --posix | zstd -T0 -3'),
    {
      name: 'stored size (grouped)',
      bytes: stored,
      ratio: stored / tzstBytes,
      note: `${((stored / inputBytes) * 100).toFixed(1)}% of input; tar+zstd ${tzstBytes} B`,
    },
    {
      name: 'stored size (one blob per file)',
      bytes: plainBytes,
      ratio: plainBytes / tzstBytes,
      note: `${((plainBytes / inputBytes) * 100).toFixed(1)}% of input`,
    },
    row('restore copy', t.copy, t.tarRestore, 'vs zstd -d | tar -x'),
    row(
      '1%-changed save',
      t.second,
      t.tarSave,
      st
        ? `${changedFiles} files changed: read ${st.read}, reused ${st.reused}; wrote ${st.bytesWritten} B of blobs + ${st.entryBytes} B of entry (table, meta.json) for ${changedBytes} changed B (${((st.bytesWritten + st.entryBytes) / changedBytes).toFixed(2)}x)`
        : undefined,
    ),
    {
      name: 'dedup across the two versions',
      bytes: storeOnDisk,
      ratio: dedup,
      note: 'sum of the entries’ stored bytes / blobs on disk',
    },
    ...(await codecRows()),
  ];
}

function fmt(rows: readonly BenchRow[]): string {
  const lines = [
    `${'measure'.padEnd(36)} ${'seconds'.padStart(8)} ${'baseline'.padStart(8)} ${'ratio'.padStart(7)} ${'bytes'.padStart(12)}  note`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(36)} ${(r.seconds?.toFixed(3) ?? '').padStart(8)} ${(r.baseline?.toFixed(3) ?? '').padStart(8)} ${(r.ratio?.toFixed(3) ?? '').padStart(7)} ${(r.bytes?.toString() ?? '').padStart(12)}  ${r.note ?? ''}`,
    );
  }
  return lines.join('\n');
}

if (
  process.argv[1] !== undefined &&
  fileURLToPath(import.meta.url) === path.resolve(process.argv[1])
) {
  benchStore().then(
    (rows) => console.log(fmt(rows)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
