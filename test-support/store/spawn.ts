/** Runs test-support/store/child.js as a child process, optionally stopping it at a pause point. */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PAUSE_AT_ENV, PAUSE_MARKER_ENV } from './faults.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  job: unknown,
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<ChildResult> } {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<ChildResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export function runChild(job: unknown, env: Record<string, string> = {}): Promise<ChildResult> {
  return run(job, env).done;
}

/**
 * Starts the child with the pause hook set to `point`, waits until it reports being there,
 * and kills it with SIGKILL. Throws if the child ends before reaching the point.
 */
export async function killAt(job: unknown, point: string, marker: string): Promise<void> {
  await fs.rm(marker, { force: true });
  const { child, done } = run(job, { [PAUSE_AT_ENV]: point, [PAUSE_MARKER_ENV]: marker });
  let ended: ChildResult | undefined;
  void done.then((r) => (ended = r));
  for (;;) {
    if (ended !== undefined) {
      throw new Error(`child ended before ${point}: ${ended.code} ${ended.stderr}`);
    }
    try {
      await fs.access(marker);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  child.kill('SIGKILL');
  const r = await done;
  if (r.signal !== 'SIGKILL') throw new Error(`child was not killed: ${r.code} ${r.stderr}`);
}

/** The last line of the child's stdout that is JSON (warnings print lines of their own). */
export function lastJson<T>(stdout: string): T {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`no JSON in child output: ${stdout}`);
  return JSON.parse(line) as T;
}
