/**
 * Real third-party C code for end-to-end builds, offline: the zstd library as the zstd-napi
 * package ships it (node_modules/zstd-napi/deps/zstd/lib, BSD licence), in a git repository
 * with a small Makefile of ours (the package ships none). Jobs clone it afresh, as
 * actions/checkout does, so every source has a new mtime.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DEMO_WORKSPACE, git, REPO } from './world.js';

export const ZSTD_LIB = path.join(REPO, 'node_modules', 'zstd-napi', 'deps', 'zstd', 'lib');

/**
 * The whole library at -O0 (a few seconds on two cores), one object per `.c` file plus the
 * archive; `-MMD -MP` dependency files make a header edit rebuild the objects that include it.
 * Every command is printed, so `builtBy` can count what a run did.
 */
const MAKEFILE = `# Written by clyde-cache's tests (test-support/c-project.ts); lib/ is zstd's own.
SRCS := $(sort $(wildcard lib/common/*.c lib/compress/*.c lib/decompress/*.c))
OBJS := $(SRCS:lib/%.c=build/%.o)
CFLAGS := -O0 -DZSTD_DISABLE_ASM

build/libzstd.a: $(OBJS)
\t$(AR) rcs $@ $^

build/%.o: lib/%.c
\t@mkdir -p $(@D)
\t$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(OBJS:.o=.d)
`;

/** Makes the repository at `dir` (lib/, Makefile, .gitignore of build/) with one commit. */
export async function createZstdRepo(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.cp(ZSTD_LIB, path.join(dir, 'lib'), {
    recursive: true,
    // The assembly file is for x86-64 only; ZSTD_DISABLE_ASM builds the C fallback everywhere.
    filter: (src) => !src.endsWith('.S'),
  });
  await fs.writeFile(path.join(dir, 'Makefile'), MAKEFILE);
  await fs.writeFile(path.join(dir, '.gitignore'), 'build/\n');
  commitAll(dir, 'zstd library');
}

/** Makes a repository at `dir` from the demo workspace (core, lib, app; .clyde/cache.yml). */
export async function createWorkspaceRepo(dir: string): Promise<void> {
  await fs.cp(DEMO_WORKSPACE, dir, { recursive: true });
  commitAll(dir, 'demo workspace');
}

function commitAll(dir: string, message: string): void {
  git(dir, 'init', '-q');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
}

/** A fresh checkout of `origin` at `dest`, as actions/checkout gives a job. */
export function freshClone(origin: string, dest: string): void {
  git(path.dirname(dest), 'clone', '-q', origin, dest);
}

/** Appends `text` to `rel` in `origin` and commits it. */
export async function commitEdit(origin: string, rel: string, text: string): Promise<void> {
  await fs.appendFile(path.join(origin, rel), text);
  git(origin, 'commit', '-q', '-am', `edit ${rel}`);
}

/** What a `make` run did, from the commands it printed. */
export interface Built {
  /** Objects compiled (`build/...o`), sorted. */
  readonly objects: string[];
  /** Archives written. */
  readonly archives: string[];
}

export function builtBy(makeOutput: string): Built {
  const objects: string[] = [];
  const archives: string[] = [];
  for (const line of makeOutput.split('\n')) {
    const obj = / -c \S+ -o (\S+\.o)$/.exec(line);
    if (obj) objects.push(obj[1] as string);
    const ar = /^\S*ar rcs (\S+\.a) /.exec(line);
    if (ar) archives.push(ar[1] as string);
  }
  return { objects: objects.sort(), archives };
}

/** `make` in `dir` (two jobs at most: the machine has two cores); its printed commands. */
export function make(dir: string, ...args: string[]): string {
  return execFileSync('make', ['--no-print-directory', '-j2', ...args], {
    cwd: dir,
    encoding: 'utf8',
  });
}
