/**
 * Bundle each entrypoint with @vercel/ncc into dist/<entry>/index.js (ESM, run by node24), with
 * zstd-napi's native binding carried beside it. The output must be byte-for-byte reproducible:
 * CI rebuilds it and fails on any difference from what is committed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ENTRIES = ['restore', 'save', 'gc'] as const;

function bundle(entry: string): void {
  const out = path.join(repo, 'dist', entry);
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      path.join(repo, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js'),
      'build',
      path.join(repo, 'build', 'src', `${entry}.js`),
      '-o',
      out,
      '--license',
      'licenses.txt',
      '--quiet',
    ],
    { cwd: repo, stdio: 'inherit' },
  );
  // ncc copies every binding.node it finds; only build/Release/binding.node is ever loaded.
  rmSync(path.join(out, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  const native = path.join(out, 'build', 'Release', 'binding.node');
  if (!existsSync(native)) {
    throw new Error(`${entry}: the zstd-napi binding was not carried into the bundle`);
  }
}

function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();
}

for (const entry of ENTRIES) {
  bundle(entry);
  console.log(`dist/${entry}: ${listing(path.join(repo, 'dist', entry)).join(', ')}`);
}
