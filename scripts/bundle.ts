/**
 * Bundle each entrypoint with @vercel/ncc into dist/<entry>/index.js (ESM, run by node24), with
 * zstd-napi's native binding carried beside it, and each worker thread's module bundled on its
 * own (a second ncc build) beside it under the name it has beside its starter in build/
 * (WORKERS): the starters find them by a path relative to their own module, which is
 * dist/<entry>/index.js once bundled. The output must be byte-for-byte reproducible: CI
 * rebuilds it and fails on any difference from what is committed.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ENTRIES = ['restore', 'save', 'gc'] as const;
/**
 * Worker modules (under build/src) and the name each has beside its starter: pool.ts starts
 * store-worker.js, key/hashing.ts hash-worker.js.
 */
export const WORKERS = [
  { module: 'store/store-worker.js', name: 'store-worker.js' },
  { module: 'key/hash-worker.js', name: 'hash-worker.js' },
] as const;

function ncc(input: string, out: string): void {
  execFileSync(
    process.execPath,
    [
      path.join(repo, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js'),
      'build',
      input,
      '-o',
      out,
      '--quiet',
    ],
    { cwd: repo, stdio: 'inherit' },
  );
}

/**
 * Bundles each worker into a directory of its own: the file to copy beside each entry. A
 * worker must bundle into one file (no chunks, no assets): it uses node's own modules and ours
 * (the store worker loads zstd-napi's binary by the path the main thread found: `carryNapi`).
 */
function bundleWorkers(scratch: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const w of WORKERS) {
    const out = path.join(scratch, w.name);
    ncc(path.join(repo, 'build', 'src', w.module), out);
    // (Its package.json, `"type": "module"`, is the one each entry's bundle has beside it.)
    const made = listing(out).filter((f) => f !== 'package.json');
    if (made.length !== 1 || made[0] !== 'index.js') {
      throw new Error(`${w.module} bundled into more than one file: ${made.join(', ')}`);
    }
    files.set(w.name, path.join(out, 'index.js'));
  }
  return files;
}

function bundle(entry: string, workers: ReadonlyMap<string, string>, licenses: string): void {
  const out = path.join(repo, 'dist', entry);
  rmSync(out, { recursive: true, force: true });
  ncc(path.join(repo, 'build', 'src', `${entry}.js`), out);
  writeFileSync(path.join(out, 'licenses.txt'), licenses);
  for (const [name, file] of workers) copyFileSync(file, path.join(out, name));
  carryNapi(out);
}

/**
 * zstd-napi's native binary, beside the bundle where pool.ts `nativeBindingPath` looks for it
 * (the store workers load it by its path: no bundle imports the package, so ncc would not carry
 * it; its license is in licenses.txt with every production dependency's).
 */
function carryNapi(out: string): void {
  const binary = path.join(repo, 'node_modules', 'zstd-napi', 'build', 'Release', 'binding.node');
  if (!existsSync(binary)) throw new Error(`zstd-napi's binary is not built: ${binary}`);
  mkdirSync(path.join(out, 'build', 'Release'), { recursive: true });
  copyFileSync(binary, path.join(out, 'build', 'Release', 'binding.node'));
}

/**
 * The licenses of every package the bundles may carry: the production dependencies in
 * package-lock.json that are installed (a superset of what ncc bundles: ncc's own `--license`
 * misses the packages of an ESM bundle's main chunk). Per package, sorted by name: its name and
 * version, its license id, and the text of its license file (or a line saying it ships none).
 */
function licenseText(): string {
  const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  const seen = new Map<string, string>();
  for (const [dir, info] of Object.entries(lock.packages)) {
    if (dir === '' || info.dev === true || info.devOptional === true) continue;
    const abs = path.join(repo, dir);
    if (!existsSync(path.join(abs, 'package.json'))) continue; // an optional one not installed
    const pkg = JSON.parse(readFileSync(path.join(abs, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      license?: string;
    };
    const id = `${pkg.name}@${pkg.version}`;
    if (seen.has(id)) continue;
    const file = readdirSync(abs)
      .filter((f) => /^licen[cs]e/i.test(f))
      .sort()[0];
    const text =
      file !== undefined
        ? readFileSync(path.join(abs, file), 'utf8').replace(/\r\n?/g, '\n').trim()
        : '(the package ships no license file)';
    seen.set(id, `${id}\n${pkg.license ?? 'license not stated'}\n${text}\n`);
  }
  return [...seen.keys()]
    .sort()
    .map((id) => seen.get(id))
    .join('\n');
}

function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'clyde-bundle-'));
try {
  const workers = bundleWorkers(scratch);
  const licenses = licenseText();
  for (const entry of ENTRIES) {
    bundle(entry, workers, licenses);
    console.log(`dist/${entry}: ${listing(path.join(repo, 'dist', entry)).join(', ')}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
