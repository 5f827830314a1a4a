/**
 * A case-insensitive, case-preserving filesystem for tests (what APFS and NTFS are): mounts
 * test-support/casefold-fs.py (a FUSE passthrough that compares names folded) on a temp
 * directory. Needs /dev/fuse, Debian's python3-fusepy, and root or fusermount; where any is
 * missing the tests that need it say so and are skipped, except on CI as root, where a missing
 * mount is a failure (.ci/run installs the packages).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** How long a mount may take to appear, or a mount process to end once unmounted. */
const WAIT_MS = 20_000;

function script(): string {
  // Compiled to build/test-support/: the script stays in the source tree above it.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = path.join(dir, 'test-support', 'casefold-fs.py');
    if (existsSync(p)) return p;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('casefold: test-support/casefold-fs.py not found');
    dir = up;
  }
}

/** Debian's python (fusepy is a Debian package; another python on PATH may lack it). */
function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function mounted(dir: string): boolean {
  try {
    // Field 5 of each line is the mount point (spaces escaped as \040).
    const want = dir.replace(/ /g, '\\040');
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[4] === want);
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => execFile(cmd, args, (err) => resolve(err === null)));
}

export interface CaseFoldingMount {
  /** The mounted directory: names under it are compared folded. */
  readonly dir: string;
  /** The directory holding what is written under `dir`, as spelled. */
  readonly backing: string;
  /** Unmounts, waits for the filesystem process to end, and removes both directories. */
  close(): Promise<void>;
}

/** Mounts a case-folding filesystem on a new directory under `parent`. */
export async function mountCaseFolding(parent: string = os.tmpdir()): Promise<CaseFoldingMount> {
  const base = await fs.mkdtemp(path.join(parent, 'casefold-'));
  const backing = path.join(base, 'backing');
  const dir = path.join(base, 'mnt');
  await fs.mkdir(backing);
  await fs.mkdir(dir);
  const child: ChildProcess = spawn(python(), [script(), backing, dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const ended = new Promise<void>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
      resolve();
    });
    child.on('exit', () => resolve());
  });
  let gone = false;
  void ended.then(() => (gone = true));
  const start = Date.now();
  while (!mounted(dir)) {
    if (gone || Date.now() - start > WAIT_MS) {
      if (!gone) child.kill('SIGKILL');
      await ended;
      await fs.rm(base, { recursive: true, force: true });
      // (fusepy's own traceback follows the line that says why)
      const why = stderr.trim().split('\n')[0] || 'no mount appeared';
      throw new Error(`casefold: could not mount ${dir}: ${why}`);
    }
    await sleep(20);
  }
  return {
    dir,
    backing,
    close: async () => {
      if (!(await run('fusermount', ['-u', dir]))) await run('umount', [dir]);
      const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
      await ended;
      clearTimeout(timer);
      if (mounted(dir)) await run('umount', ['-l', dir]);
      await fs.rm(base, { recursive: true, force: true });
    },
  };
}

let unavailable: Promise<string | undefined> | undefined;

/**
 * Why the tests on a case-folding mount are skipped here (a trial mount failed), or undefined
 * when they run: where it mounts, and on CI as root whatever happens (there the mount must
 * work, and a test that cannot mount fails).
 */
export function caseFoldingSkipReason(): Promise<string | undefined> {
  unavailable ??= (async () => {
    const ci = process.env['CI'];
    if (ci !== undefined && ci !== '' && ci !== 'false' && process.getuid?.() === 0)
      return undefined;
    if (process.platform !== 'linux') return 'no FUSE case-folding filesystem off Linux';
    try {
      const m = await mountCaseFolding();
      await m.close();
      return undefined;
    } catch (err) {
      return `no case-folding FUSE mount here (needs /dev/fuse, python3-fusepy, root or fusermount): ${
        err instanceof Error ? err.message : String(err)
      }`;
    }
  })();
  return unavailable;
}
