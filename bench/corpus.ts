/**
 * The benchmark corpus, shared by the benchmarks: a large real tree made of copies of this
 * repository's installed dependencies (node_modules: real package files, symlinks included),
 * repeated into numbered subdirectories until about `targetFiles` files, committed into a git
 * repository (a clean checkout). Built once and cached under os.tmpdir()/clyde-bench-corpus:
 *
 *   <root>/repo/          the git checkout (c0/, c1/, ... each a copy of node_modules)
 *   <root>/plain/         the same files without .git
 *   <root>/ready.json     written last: { targetFiles, files }
 *
 * Returns the root. `sync` runs after building (performance notes: a large write or delete
 * makes the next write-heavy run slower until the kernel has flushed it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CORPUS_ROOT = path.join(os.tmpdir(), 'clyde-bench-corpus');

export interface CorpusInfo {
  readonly targetFiles: number;
  readonly files: number;
}

export async function buildCorpus(targetFiles = 50_000): Promise<string> {
  const ready = path.join(CORPUS_ROOT, 'ready.json');
  try {
    const info = JSON.parse(await fs.readFile(ready, 'utf8')) as CorpusInfo;
    if (info.targetFiles === targetFiles) return CORPUS_ROOT;
  } catch {
    // not built yet (or built for another size): build it
  }
  const source = path.resolve('node_modules');
  if (!existsSync(source)) throw new Error(`${source} not found: run from the repository root`);
  await fs.rm(CORPUS_ROOT, { recursive: true, force: true });
  const repo = path.join(CORPUS_ROOT, 'repo');
  await fs.mkdir(repo, { recursive: true });

  const perCopy = countFiles(source);
  const copies = Math.max(1, Math.ceil(targetFiles / perCopy));
  for (let i = 0; i < copies; i++) {
    await fs.cp(source, path.join(repo, `c${i}`), { recursive: true, verbatimSymlinks: true });
  }
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.email=bench@example.com', '-c', 'user.name=bench', ...args], {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'inherit'],
      maxBuffer: 1 << 30,
    });
  git('init', '-q', '-b', 'main');
  // -f: packages that ship a .gitignore must not lose files; the checkout is clean afterwards.
  git('add', '-A', '-f');
  git('commit', '-q', '-m', 'corpus');
  await fs.cp(repo, path.join(CORPUS_ROOT, 'plain'), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => path.basename(src) !== '.git' || path.dirname(src) !== repo,
  });
  execFileSync('sync');
  const info: CorpusInfo = { targetFiles, files: countFiles(path.join(CORPUS_ROOT, 'plain')) };
  await fs.writeFile(ready, JSON.stringify(info));
  return CORPUS_ROOT;
}

/** Files and symlinks under `dir`. */
export function countFiles(dir: string): number {
  const out = execFileSync(
    'find',
    [dir, '(', '-type', 'f', '-o', '-type', 'l', ')', '-printf', '.'],
    {
      maxBuffer: 1 << 30,
    },
  );
  return out.length;
}
