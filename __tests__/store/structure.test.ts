/**
 * The shape of src/ (issue 13): no import circle (type-only imports count), nothing under src/
 * that only tests import (every module is reached from an entrypoint or a worker), no test hook
 * in production code (faults come from test-support through LocalStoreOptions.faults), and no
 * file of src/store/ over 500 lines. Read from the TypeScript sources, as a newcomer reads them.
 */
import { describe, it, expect } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = path.join(REPO, 'src');
/** What runs: the three entrypoints and the two workers (scripts/bundle.ts). */
const ROOTS = ['restore.ts', 'save.ts', 'gc.ts', 'store/store-worker.ts', 'key/hash-worker.ts'];
const MAX_LINES = 500;

function sources(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const d of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isDirectory()) out.push(...sources(dir, r));
    else if (d.name.endsWith('.ts') && !d.name.endsWith('.d.ts')) out.push(r);
  }
  return out.sort();
}

/** Every module of src/ a module imports (static, type-only and dynamic with a literal). */
function importsOf(rel: string): string[] {
  const text = readFileSync(path.join(SRC, rel), 'utf8');
  const out = new Set<string>();
  const re = /(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g;
  for (const m of text.matchAll(re)) {
    const target = path.posix.normalize(
      path.posix.join(path.posix.dirname(rel), (m[1] as string).replace(/\.js$/, '.ts')),
    );
    out.add(target);
  }
  return [...out].sort();
}

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('src/', () => {
  it('imports only modules that exist', () => {
    const missing = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => !graph.has(d)).map((d) => `${f} -> ${d}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no import circle', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open')
          circles.push([...stack.slice(stack.indexOf(d)), d].join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(circles).toEqual([]);
  });

  it('holds nothing that only tests import', () => {
    const reached = new Set<string>();
    const walk = (f: string): void => {
      if (reached.has(f)) return;
      reached.add(f);
      for (const d of graph.get(f) ?? []) walk(d);
    };
    for (const r of ROOTS) walk(r);
    expect(files.filter((f) => !reached.has(f))).toEqual([]);
  });

  it('reads no test-only switch (faults are options, not environment variables)', () => {
    const hooks = files.filter((f) =>
      /CLYDE_STORE_TEST_|test-hooks/.test(
        readFileSync(path.join(SRC, f), 'utf8').replace(/^\s*(\/\/|\*|\/\*).*$/gm, ''),
      ),
    );
    expect(hooks).toEqual([]);
  });

  it('keeps every file of src/store/ under 500 lines', () => {
    const long = files
      .filter((f) => f.startsWith('store/'))
      .map((f) => [f, readFileSync(path.join(SRC, f), 'utf8').split('\n').length - 1] as const)
      .filter(([, n]) => n > MAX_LINES)
      .map(([f, n]) => `${f}: ${n} lines`);
    expect(long).toEqual([]);
  });
});
