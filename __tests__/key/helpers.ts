/** Test helpers for the key tests: temp trees on disk and a real git. Never imported by src/. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CacheKey, KeyComponent, KeyInputs } from '../../src/key/index.js';

/** File contents by relative path; `{ link }` makes a symlink with that target. */
export type Tree = Record<string, string | Buffer | { link: string }>;

const made: string[] = [];

/** A fresh temp directory, removed by `cleanup()`. */
export function tempDir(hint = 'clyde-key-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), hint));
  made.push(dir);
  return dir;
}

export function cleanup(): void {
  while (made.length > 0) rmSync(made.pop() as string, { recursive: true, force: true });
}

export function writeTree(root: string, tree: Tree): string {
  for (const [rel, content] of Object.entries(tree)) {
    const abs = path.join(root, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    if (typeof content === 'object' && 'link' in content) {
      rmSync(abs, { force: true });
      symlinkSync(content.link, abs);
    } else {
      writeFileSync(abs, content);
    }
  }
  return root;
}

export function makeTree(tree: Tree): string {
  return writeTree(tempDir(), tree);
}

export function inputs(workspace: string, over: Partial<KeyInputs> = {}): KeyInputs {
  return {
    workspace,
    name: 'owner/repo',
    version: '1.0.0',
    variant: 'release',
    platform: 'linux-x64',
    sources: [],
    paths: ['out'],
    excludePaths: [],
    lockfiles: 'auto',
    config: '',
    ...over,
  };
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    [
      '-c',
      'user.email=test@example.com',
      '-c',
      'user.name=Test',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** A git repo holding `tree`, all of it committed. */
export function makeRepo(tree: Tree): string {
  const dir = makeTree(tree);
  git(dir, 'init', '-q');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'init');
  return dir;
}

export function component(key: CacheKey, name: string): KeyComponent | undefined {
  return key.manifest.components.find((c) => c.name === name);
}

/** Names of the components whose hash differs between two keys (or that only one has). */
export function changedComponents(a: CacheKey, b: CacheKey): string[] {
  const names = new Set([...a.manifest.components, ...b.manifest.components].map((c) => c.name));
  return [...names].filter((n) => component(a, n)?.hash !== component(b, n)?.hash);
}

/** Everything written to stdout (where @actions/core logs) while `fn` runs. */
export async function captureStdout(fn: () => void | Promise<void>): Promise<string> {
  const chunks: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = original;
  }
  return chunks.join('');
}

/** Git's own blob id of `content` (`git hash-object`, no filters): the oracle for file ids. */
export function blob(content: string | Buffer): string {
  return execFileSync('git', ['hash-object', '--no-filters', '--stdin'], {
    input: content,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).trim();
}
