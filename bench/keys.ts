/**
 * Key computation on a large real tree (bench/corpus.ts), side by side in one run:
 *   - computeKey on the git checkout (ids from git's index: the fast path)
 *   - computeKey on the same files without .git (every file read and hashed)
 *   - @actions/glob hashFiles('**') on the files without .git
 *   - find (files and symlinks) | xargs -0 sha256sum | sort, on the files without .git
 * Every method covers the same files and symlinks (hashFiles and sha256sum read a symlink's
 * target, computeKey hashes the link itself); the two computeKey runs must give the same key
 * over that many files, or the benchmark fails. Each method runs once to warm up (page cache,
 * JIT, git's index stat refresh), then median of 3 runs for hashFiles, 5 for the rest, in
 * interleaved rounds whose starting method rotates, so that no method always runs right after
 * the same other. Ratios are hashFiles / method.
 *
 * Run alone: `node build/bench/keys.js [targetFiles]` from the repository root.
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { hashFiles } from '@actions/glob';
import { computeKey, type CacheKey, type KeyInputs } from '../src/key/index.js';
import { buildCorpus, countFiles } from './corpus.js';

export interface BenchRow {
  readonly name: string;
  /** Median seconds. */
  readonly seconds: number;
  readonly runs: readonly number[];
  /** hashFiles seconds / this row's seconds. */
  readonly speedupVsHashFiles: number;
  readonly files: number;
}

interface Method {
  readonly name: string;
  readonly runs: number;
  readonly files: number;
  readonly run: () => Promise<unknown>;
}

function keyInputs(workspace: string, over: Partial<KeyInputs> = {}): KeyInputs {
  return {
    workspace,
    name: 'bench',
    version: '1',
    variant: 'default',
    platform: `${process.platform}-${process.arch}`,
    sources: [],
    paths: ['out'],
    excludePaths: [],
    lockfiles: [],
    config: '',
    ...over,
  };
}

/** `corpusDir` is what buildCorpus returned (holding repo/ and plain/). */
export async function benchKeys(corpusDir: string): Promise<BenchRow[]> {
  const repo = realpathSync(path.join(corpusDir, 'repo'));
  const plain = realpathSync(path.join(corpusDir, 'plain'));
  const files = countFiles(plain);
  // Both computeKey paths must agree with each other and cover every file, on every run.
  let expected: string | undefined;
  const checked = async (workspace: string) => {
    const key: CacheKey = await computeKey(keyInputs(workspace));
    const counted = key.manifest.components.find((c) => c.kind === 'sources')?.fileCount;
    if (counted !== files) throw new Error(`computeKey hashed ${counted} files, not ${files}`);
    expected ??= key.key;
    if (key.key !== expected) throw new Error(`${workspace}: key ${key.key}, expected ${expected}`);
  };
  const methods: Method[] = [
    {
      name: 'computeKey, git fast path',
      runs: 5,
      files,
      run: () => checked(repo),
    },
    {
      name: 'computeKey, no git',
      runs: 5,
      files,
      run: () => checked(plain),
    },
    {
      name: "@actions/glob hashFiles('**')",
      runs: 3,
      files,
      run: async () => {
        // hashFiles resolves patterns against the cwd and keeps files under GITHUB_WORKSPACE.
        const cwd = process.cwd();
        const ws = process.env['GITHUB_WORKSPACE'];
        process.chdir(plain);
        process.env['GITHUB_WORKSPACE'] = plain;
        try {
          const h = await hashFiles('**', plain);
          if (h === '') throw new Error('hashFiles matched nothing');
        } finally {
          process.chdir(cwd);
          if (ws === undefined) delete process.env['GITHUB_WORKSPACE'];
          else process.env['GITHUB_WORKSPACE'] = ws;
        }
      },
    },
    {
      name: 'find | xargs sha256sum | sort',
      runs: 5,
      files,
      run: async () => {
        execFileSync(
          'sh',
          [
            '-c',
            'find . \\( -type f -o -type l \\) -print0 | xargs -0 sha256sum | sort >/dev/null',
          ],
          {
            cwd: plain,
            stdio: ['ignore', 'ignore', 'inherit'],
          },
        );
      },
    },
  ];
  const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  // One warm-up of each, then interleaved rounds, each starting one method further on.
  for (const m of methods) await m.run();
  const rounds = Math.max(...methods.map((m) => m.runs));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < methods.length; i++) {
      const m = methods[(r + i) % methods.length] as Method;
      if (r >= m.runs) continue;
      const start = process.hrtime.bigint();
      await m.run();
      (times.get(m.name) as number[]).push(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
  const median = (xs: readonly number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)] as number;
  };
  const hashFilesSeconds = median(times.get(methods[2]?.name as string) as number[]);
  return methods.map((m) => {
    const runs = times.get(m.name) as number[];
    const seconds = median(runs);
    return {
      name: m.name,
      seconds,
      runs,
      speedupVsHashFiles: hashFilesSeconds / seconds,
      files: m.files,
    };
  });
}

export function formatRows(rows: readonly BenchRow[]): string {
  const lines = [
    `| method | files | median s | runs | hashFiles / method |`,
    `|---|---:|---:|---|---:|`,
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.files} | ${r.seconds.toFixed(3)} | ${r.runs.map((x) => x.toFixed(2)).join(' ')} | ${r.speedupVsHashFiles.toFixed(1)}x |`,
    ),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const target = Number(process.argv[2] ?? 50_000);
  const dir = await buildCorpus(target);
  console.log(formatRows(await benchKeys(dir)));
}
