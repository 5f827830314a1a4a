/**
 * A small world for end-to-end runs: a loopback runner-cache service, a git checkout of the demo
 * project as the workspace, a persistent local store, and the action's own directory. Used by
 * the e2e tests and by `npm run demo`, so both run the same jobs the same way.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCacheService, type CacheService } from './cache-service/index.js';
import { Job, type StepResult } from './runner.js';

/** The repository root (this file runs from build/test-support/). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_PROJECT = path.join(REPO, 'demo', 'project');
/** Three packages (app -> lib -> core) described in .clyde/cache.yml. */
export const DEMO_WORKSPACE = path.join(REPO, 'demo', 'workspace');

/** Output directories the demo projects' .gitignore files name: never copied into a world. */
const BUILD_OUTPUTS = new Set(['out', 'build', 'dist']);

export interface World {
  readonly root: string;
  readonly workspace: string;
  readonly localStore: string;
  readonly service: CacheService;
  close(): Promise<void>;
}

/** git with a fixed identity and default branch, as a CI checkout has; returns stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    [
      '-c',
      'user.email=ci@example.com',
      '-c',
      'user.name=CI',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    { cwd, encoding: 'utf8' },
  );
}

export async function createWorld(project: string = DEMO_PROJECT): Promise<World> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-world-'));
  const workspace = path.join(root, 'workspace');
  const localStore = path.join(root, 'local-store');
  await fs.cp(project, workspace, {
    recursive: true,
    filter: (src) =>
      !path
        .relative(project, src)
        .split(path.sep)
        .some((p) => BUILD_OUTPUTS.has(p)),
  });
  git(workspace, 'init', '-q');
  git(workspace, 'add', '-A');
  git(workspace, 'commit', '-q', '-m', 'demo project');
  const service = await startCacheService({ dataDir: path.join(root, 'service') });
  return {
    root,
    workspace,
    localStore,
    service,
    async close() {
      await service.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

export interface JobRun {
  readonly main: StepResult;
  readonly built: boolean;
  readonly buildLog: string;
  readonly posts: StepResult[];
  readonly job: Job;
}

export interface JobSpec {
  /** Inputs beyond the demo's defaults. */
  readonly with?: Record<string, string>;
  readonly env?: Record<string, string>;
  /** Make the build step fail (to exercise the save policy). */
  readonly failBuild?: boolean;
  readonly ref?: string;
  /** The action's directory (action.yml + dist/); default this repository. */
  readonly action?: string;
  /** Replace the demo's inputs instead of adding to them. */
  readonly inputs?: Record<string, string>;
  /** Make targets from the main step's outputs; default: all, unless an exact hit. */
  readonly targets?: (main: StepResult) => string[] | undefined;
}

/** The inputs every demo job uses. */
export function demoInputs(world: World): Record<string, string> {
  return { path: 'out', name: 'demo', 'local-cache-dir': world.localStore };
}

/**
 * A copy of the action as a user gets it (action.yml and dist/, no node_modules) in the world's
 * root, for a test that breaks a file of the bundle: returns its directory, for `spec.action`.
 */
export async function copyOfAction(world: World): Promise<string> {
  const action = path.join(world.root, 'action-copy');
  await fs.mkdir(action);
  await fs.copyFile(path.join(REPO, 'action.yml'), path.join(action, 'action.yml'));
  await fs.cp(path.join(REPO, 'dist'), path.join(action, 'dist'), { recursive: true });
  return action;
}

/** One CI job: checkout is the world's workspace; the action; `make` unless an exact hit; post. */
export async function runDemoJob(world: World, spec: JobSpec = {}): Promise<JobRun> {
  const job = new Job({
    workspace: world.workspace,
    env: { ...world.service.env(), ...(spec.env ?? {}) },
    ...(spec.ref ? { ref: spec.ref } : {}),
  });
  const main = await job.uses(
    spec.action ?? REPO,
    { ...(spec.inputs ?? demoInputs(world)), ...(spec.with ?? {}) },
    'cache',
  );
  let built = false;
  let buildLog = '';
  await job.run('build', () => {
    if (spec.failBuild) throw new Error('the build failed');
    const targets = spec.targets
      ? spec.targets(main)
      : main.outputs['cache-hit'] === 'true'
        ? undefined
        : [];
    if (targets === undefined) return;
    buildLog = execFileSync('make', ['--no-print-directory', ...targets], {
      cwd: world.workspace,
      encoding: 'utf8',
    });
    built = true;
  });
  const posts = await job.finish();
  return { main, built, buildLog, posts, job };
}
