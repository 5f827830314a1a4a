// Runner emulation: runs a JavaScript action's entrypoints as child processes the way the
// GitHub runner does, for end-to-end tests and `npm run demo`. Test support only: never
// imported by src/.
//
// What it reproduces: inputs (declared defaults overlaid with `with`, as INPUT_<NAME>), a minimal
// job environment (GITHUB_*, RUNNER_*, CI), fresh per-step file-command files (GITHUB_OUTPUT,
// GITHUB_STATE, GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY) parsed in both formats, main's state
// handed to post as STATE_*, GITHUB_ENV/GITHUB_PATH exports applied to later steps, workflow
// commands (::warning:: etc.) parsed into annotations, posts run in reverse order under their
// post-if, and a job status that a failing step turns to failure.

import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { randomUUID, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import {
  interpolate,
  parseCondition,
  type Condition,
  type EvaluationContext,
} from './expressions.js';

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  /** The command's properties (title, file, line, ...), when it had any. */
  properties?: Record<string, string>;
}

export interface StepResult {
  phase: 'main' | 'post';
  exitCode: number;
  stdout: string;
  stderr: string;
  /** From GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** From GITHUB_STATE (what main hands to post). */
  state: Record<string, string>;
  /** From GITHUB_ENV: what this step exported to later steps. */
  exportedEnv: Record<string, string>;
  /** GITHUB_STEP_SUMMARY content. */
  summary: string;
  /** Workflow commands ::error::, ::warning::, ::notice:: from stdout and stderr. */
  annotations: Annotation[];
  /** The step did not run: a post skipped by its post-if, or a main after a failed step. */
  skipped: boolean;
}

export interface JobOptions {
  /** GITHUB_WORKSPACE, and the working directory of every step. */
  workspace: string;
  /** RUNNER_TEMP; default: a fresh directory per job, removed by finish(). */
  runnerTemp?: string;
  /** RUNNER_TOOL_CACHE; default: a fresh directory per job, removed by finish(). */
  toolCache?: string;
  /** Extra environment, like a workflow's `env:` (e.g. the cache service's ACTIONS_* vars). */
  env?: Record<string, string>;
  /** GITHUB_REPOSITORY, default 'octo/demo'. */
  repository?: string;
  /** GITHUB_REF, default 'refs/heads/main'. */
  ref?: string;
  /** GITHUB_JOB, default 'test'. */
  jobId?: string;
  /** Copy each step's output to this process's stdout/stderr as it runs (for the demo). */
  echo?: boolean;
  /** A step still running after this many milliseconds is killed and fails; default 10 min. */
  stepTimeoutMs?: number;
}

export interface RunStepContext {
  workspace: string;
  /**
   * The environment a `run:` step sees, including fresh GITHUB_ENV / GITHUB_PATH /
   * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files: append to them to export, as a shell step would.
   * Like the runner, the ACTIONS_* runtime variables are given only to actions, not to `run:`.
   */
  env: Record<string, string>;
}

/** Variables the runner hands only to JavaScript and container actions, not to `run:` steps. */
const ACTION_ONLY_ENV = new Set([
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_RUNTIME_URL',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_CACHE_MODE',
  'ACTIONS_ID_TOKEN_REQUEST_URL',
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
]);

/** Host variables passed through to steps (everything else of the parent env is dropped). */
const BASE_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG'];
const BASE_ENV_WINDOWS = ['SystemRoot', 'ComSpec', 'PATHEXT', 'USERPROFILE', 'TEMP', 'TMP'];

/** The runner's step summary limit. */
const SUMMARY_LIMIT_BYTES = 1024 * 1024;

/**
 * Linux's limit on one environment string, `NAME=value` and its NUL (MAX_ARG_STRLEN, 32 pages):
 * beyond it execve fails with E2BIG and the runner cannot start the step, as happens to a post
 * whose STATE_ variable grew too large (actions/runner#1733). Enforced on every host, so a test
 * on macOS or Windows fails as a Linux runner would.
 */
export const ENV_STRING_LIMIT_BYTES = 128 * 1024;

/** The first variable Linux would refuse (see ENV_STRING_LIMIT_BYTES), as a message. */
export function oversizedEnv(env: Record<string, string>): string | undefined {
  for (const [name, value] of Object.entries(env)) {
    const bytes = Buffer.byteLength(name) + Buffer.byteLength(value) + 2; // '=' and NUL
    if (bytes > ENV_STRING_LIMIT_BYTES) {
      return `E2BIG: Argument list too long (${name} takes ${bytes} bytes; Linux allows ${ENV_STRING_LIMIT_BYTES} per environment variable)`;
    }
  }
  return undefined;
}

const FILE_COMMANDS = {
  GITHUB_OUTPUT: 'set_output',
  GITHUB_STATE: 'save_state',
  GITHUB_ENV: 'set_env',
  GITHUB_PATH: 'add_path',
  GITHUB_STEP_SUMMARY: 'step_summary',
} as const;
type FileCommand = keyof typeof FILE_COMMANDS;

// ---------------------------------------------------------------------------------------------
// Node binary

let cachedNodeBinary: string | undefined;

function nodeMajor(binary: string): number {
  const result = spawnSync(binary, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (result.status !== 0) return 0;
  return Number.parseInt(result.stdout.trim().split('.')[0] ?? '0', 10);
}

/** The directory holding package.json and node_modules/, found upwards from this file. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'node_modules'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`runner: no package.json with node_modules/ above ${import.meta.url}`);
    }
    dir = parent;
  }
}

/**
 * The Node 24 binary actions with `using: node24` run under: this process's own binary if it is
 * Node 24 or newer, else the `node` devDependency's binary in the repository.
 */
export function nodeBinary(): string {
  if (cachedNodeBinary) return cachedNodeBinary;
  const ownMajor = Number.parseInt(process.versions.node.split('.')[0] ?? '0', 10);
  if (ownMajor >= 24) {
    cachedNodeBinary = process.execPath;
    return cachedNodeBinary;
  }
  const binDir = path.join(repoRoot(), 'node_modules', 'node', 'bin');
  const candidates = [path.join(binDir, 'node'), path.join(binDir, 'node.exe')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `runner: this process is Node ${process.versions.node} and ${candidates[0]} does not exist; ` +
        `run the tests with Node >= 24 or install the 'node' devDependency (npm ci)`,
    );
  }
  const major = nodeMajor(found);
  if (major < 24) {
    throw new Error(`runner: ${found} is Node ${major}, but node24 actions need Node >= 24`);
  }
  cachedNodeBinary = found;
  return cachedNodeBinary;
}

// ---------------------------------------------------------------------------------------------
// File commands and workflow commands

export class FileCommandError extends Error {
  override name = 'FileCommandError';
}

function readLine(text: string, start: number): { line: string; next: number; newline: string } {
  const lf = text.indexOf('\n', start);
  if (lf < 0) return { line: text.slice(start), next: text.length, newline: '' };
  const crlf = lf > start && text[lf - 1] === '\r';
  return {
    line: text.slice(start, crlf ? lf - 1 : lf),
    next: lf + 1,
    newline: crlf ? '\r\n' : '\n',
  };
}

/**
 * Parses a GITHUB_OUTPUT / GITHUB_STATE / GITHUB_ENV file as the runner does: `name=value`
 * lines and `name<<DELIMITER` heredocs (value up to a line equal to the delimiter). Throws
 * FileCommandError on the formats the runner rejects.
 */
export function parseFileCommand(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  let index = 0;
  while (index < text.length) {
    const { line, next } = readLine(text, index);
    index = next;
    if (line === '') continue;
    const equals = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      const name = line.slice(0, equals);
      if (name === '')
        throw new FileCommandError(`Invalid format '${line}'. Name must not be empty`);
      values[name] = line.slice(equals + 1);
    } else if (heredoc >= 0) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      if (name === '' || delimiter === '') {
        throw new FileCommandError(
          `Invalid format '${line}'. Name must not be empty and delimiter must not be empty`,
        );
      }
      const valueStart = index;
      let valueEnd = index;
      for (;;) {
        if (index >= text.length) {
          throw new FileCommandError(`Invalid value. Matching delimiter not found '${delimiter}'`);
        }
        const current = readLine(text, index);
        if (current.line === delimiter) {
          index = current.next;
          break;
        }
        if (current.newline === '') {
          throw new FileCommandError('Invalid value. EOF marker missing new line.');
        }
        valueEnd = current.next - current.newline.length;
        index = current.next;
      }
      values[name] = text.slice(valueStart, valueEnd);
    } else {
      throw new FileCommandError(`Invalid format '${line}'`);
    }
  }
  return values;
}

function unescapeData(value: string): string {
  return value.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}

function unescapeProperty(value: string): string {
  return unescapeData(value).replace(/%3A/gi, ':').replace(/%2C/gi, ',');
}

/**
 * Parses `::error|warning|notice [k=v,...]::message` workflow commands from step output, honouring
 * `::stop-commands::TOKEN` ... `::TOKEN::` like the runner.
 */
export function parseAnnotations(output: string): Annotation[] {
  const annotations: Annotation[] = [];
  let stopToken: string | undefined;
  for (const rawLine of output.split(/\r?\n/)) {
    const line = rawLine.trimStart();
    if (stopToken !== undefined) {
      if (line.trimEnd() === `::${stopToken}::`) stopToken = undefined;
      continue;
    }
    const match = /^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$/.exec(line);
    if (!match) continue;
    const command = (match[1] as string).toLowerCase();
    const data = match[3] as string;
    if (command === 'stop-commands') {
      stopToken = data;
      continue;
    }
    if (command !== 'error' && command !== 'warning' && command !== 'notice') continue;
    const annotation: Annotation = { level: command, message: unescapeData(data) };
    const rawProperties = match[2]?.trim();
    if (rawProperties) {
      const properties: Record<string, string> = {};
      for (const pair of rawProperties.split(',')) {
        const eq = pair.indexOf('=');
        if (eq > 0) properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1));
      }
      annotation.properties = properties;
    }
    annotations.push(annotation);
  }
  return annotations;
}

// ---------------------------------------------------------------------------------------------
// action.yml

interface ActionInput {
  default?: string;
  deprecationMessage?: string;
}

interface ActionDefinition {
  dir: string;
  name: string;
  inputs: Map<string, ActionInput>;
  using: 'node20' | 'node24';
  main: string;
  pre?: string;
  post?: string;
  postIf: Condition;
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`runner: ${what} must be a mapping`);
  }
  return value as Record<string, unknown>;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`runner: ${what} must be a string`);
}

async function loadAction(actionDir: string): Promise<ActionDefinition> {
  const dir = path.resolve(actionDir);
  const file = ['action.yml', 'action.yaml']
    .map((name) => path.join(dir, name))
    .find((candidate) => existsSync(candidate));
  if (!file) throw new Error(`runner: no action.yml or action.yaml in ${dir}`);
  const doc = asRecord(parseYaml(await readFile(file, 'utf8')), file);
  const runs = asRecord(doc.runs, `${file}: runs`);
  const using = runs.using;
  if (using !== 'node20' && using !== 'node24') {
    throw new Error(
      `runner: ${file}: runs.using is ${JSON.stringify(using)}; only node20 and node24 are emulated`,
    );
  }
  const entry = (key: 'main' | 'pre' | 'post'): string | undefined => {
    const value = optionalString(runs[key], `${file}: runs.${key}`);
    if (value === undefined) return undefined;
    const resolved = path.resolve(dir, value);
    if (!existsSync(resolved)) {
      throw new Error(`runner: ${file}: runs.${key} ${value} does not exist (${resolved})`);
    }
    return resolved;
  };
  const main = entry('main');
  if (!main) throw new Error(`runner: ${file}: runs.main is required`);
  const inputs = new Map<string, ActionInput>();
  if (doc.inputs !== undefined && doc.inputs !== null) {
    for (const [id, spec] of Object.entries(asRecord(doc.inputs, `${file}: inputs`))) {
      const fields = spec === null ? {} : asRecord(spec, `${file}: inputs.${id}`);
      const input: ActionInput = {};
      const def = optionalString(fields.default, `${file}: inputs.${id}.default`);
      if (def !== undefined) input.default = def;
      const deprecation = optionalString(
        fields.deprecationMessage,
        `${file}: inputs.${id}.deprecationMessage`,
      );
      if (deprecation !== undefined) input.deprecationMessage = deprecation;
      inputs.set(id, input);
    }
  }
  const postIfSource = optionalString(runs['post-if'], `${file}: runs.post-if`) ?? 'always()';
  let postIf: Condition;
  try {
    postIf = parseCondition(postIfSource);
  } catch (error) {
    throw new Error(`runner: ${file}: runs.post-if: ${(error as Error).message}`, { cause: error });
  }
  const definition: ActionDefinition = {
    dir,
    name: optionalString(doc.name, `${file}: name`) ?? path.basename(dir),
    inputs,
    using,
    main,
    postIf,
  };
  const pre = entry('pre');
  if (pre) definition.pre = pre;
  const post = entry('post');
  if (post) definition.post = post;
  return definition;
}

/** INPUT_<NAME>: the input id upper-cased with spaces replaced by `_` (hyphens stay). */
export function inputEnvName(id: string): string {
  return `INPUT_${id.replace(/ /g, '_').toUpperCase()}`;
}

// ---------------------------------------------------------------------------------------------
// Job

interface PendingPost {
  action: ActionDefinition;
  stepEnv: Record<string, string>;
  /** The step's `with:`: the runner evaluates inputs again for post (e.g. `${{ job.status }}`). */
  withInputs: Record<string, string>;
  state: Record<string, string>;
  actionId: string;
}

interface StepFiles {
  dir: string;
  paths: Record<FileCommand, string>;
}

function runnerOs(): string {
  switch (process.platform) {
    case 'linux':
      return 'Linux';
    case 'darwin':
      return 'macOS';
    case 'win32':
      return 'Windows';
    default:
      return process.platform;
  }
}

function runnerArch(): string {
  switch (process.arch) {
    case 'x64':
      return 'X64';
    case 'arm64':
      return 'ARM64';
    case 'ia32':
      return 'X86';
    case 'arm':
      return 'ARM';
    default:
      return process.arch.toUpperCase();
  }
}

let runCounter = 0;

export class Job {
  private readonly opts: JobOptions;
  private jobStatus: 'success' | 'failure' = 'success';
  private readonly results: StepResult[] = [];
  private readonly posts: PendingPost[] = [];
  /** GITHUB_ENV exports so far, applied to every later step. */
  private readonly exported: Record<string, string> = {};
  /** GITHUB_PATH additions so far, newest first. */
  private readonly addedPath: string[] = [];
  private readonly actionIds = new Map<string, number>();
  private dirs: Promise<{ temp: string; toolCache: string; ownRoot?: string }> | undefined;
  private readonly runId = String(Date.now() * 100 + (runCounter++ % 100));
  private finished = false;
  private stepCounter = 0;

  constructor(opts: JobOptions) {
    this.opts = { ...opts, workspace: path.resolve(opts.workspace) };
  }

  get status(): 'success' | 'failure' {
    return this.jobStatus;
  }

  get steps(): StepResult[] {
    return this.results;
  }

  /** Runs a JavaScript action's main entrypoint and registers its post, like `uses:`. */
  async uses(
    actionDir: string,
    withInputs: Record<string, string> = {},
    id?: string,
  ): Promise<StepResult> {
    this.assertOpen();
    const action = await loadAction(actionDir);
    const actionId = this.actionIdFor(id);
    if (this.jobStatus !== 'success') {
      this.log(`Skipping ${action.name}: the job has failed`);
      const skipped = emptyResult('main', true);
      this.results.push(skipped);
      return skipped;
    }
    const { temp } = await this.directories();
    const warnings: Annotation[] = [];
    const inputEnv = this.inputEnv(action, withInputs, await this.evaluationContext(), warnings);
    const stepEnv = { ...inputEnv, GITHUB_ACTION: actionId, GITHUB_ACTION_PATH: action.dir };
    if (action.pre) {
      // The runner runs `pre` as its own step at job start; here it runs just before main.
      const pre = await this.runEntrypoint(action, action.pre, 'main', stepEnv, {}, temp);
      if (pre.exitCode !== 0) {
        pre.annotations.unshift(...warnings);
        this.results.push(pre);
        return pre;
      }
    }
    const result = await this.runEntrypoint(action, action.main, 'main', stepEnv, {}, temp);
    result.annotations.unshift(...warnings);
    this.results.push(result);
    if (action.post) {
      this.posts.push({ action, stepEnv, withInputs, state: { ...result.state }, actionId });
    }
    return result;
  }

  /**
   * A `run:` step executed in this process. If `fn` throws, the job fails and later steps are
   * skipped; posts are still evaluated. Exports go through ctx.env.GITHUB_ENV / GITHUB_PATH.
   */
  async run(name: string, fn: (ctx: RunStepContext) => Promise<void> | void): Promise<void> {
    this.assertOpen();
    if (this.jobStatus !== 'success') {
      this.log(`Skipping run step '${name}': the job has failed`);
      return;
    }
    const { temp } = await this.directories();
    const files = await this.createStepFiles(temp);
    const env = Object.fromEntries(
      Object.entries(
        this.composeEnv(await this.contextEnv(), { GITHUB_ACTION: this.actionIdFor() }),
      ).filter(([name]) => !ACTION_ONLY_ENV.has(name)),
    );
    Object.assign(env, files.paths);
    this.log(`Run ${name}`);
    try {
      await fn({ workspace: this.opts.workspace, env });
    } catch (error) {
      this.jobStatus = 'failure';
      this.log(
        `Run step '${name}' failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    try {
      const collected = await this.collectFileCommands(files);
      this.applyExports(collected.exportedEnv, collected.addedPath);
    } catch (error) {
      this.jobStatus = 'failure';
      this.log(`Run step '${name}': ${(error as Error).message}`);
    }
  }

  /** Runs the registered posts in reverse order under their post-if; returns their results. */
  async finish(): Promise<StepResult[]> {
    this.assertOpen();
    this.finished = true;
    const postResults: StepResult[] = [];
    try {
      const { temp } = await this.directories();
      for (const post of [...this.posts].reverse()) {
        const ctx = await this.evaluationContext();
        if (!post.action.postIf.evaluate(ctx)) {
          this.log(`Skipping post ${post.action.name}: post-if '${post.action.postIf.source}'`);
          const skipped = emptyResult('post', true);
          this.results.push(skipped);
          postResults.push(skipped);
          continue;
        }
        const stateEnv: Record<string, string> = {};
        for (const [name, value] of Object.entries(post.state)) stateEnv[`STATE_${name}`] = value;
        // As the runner does, inputs (and their defaults) are evaluated again for post, under
        // the job's status at that point.
        const inputEnv = this.inputEnv(post.action, post.withInputs, ctx, []);
        const result = await this.runEntrypoint(
          post.action,
          post.action.post as string,
          'post',
          { ...post.stepEnv, ...inputEnv, GITHUB_ACTION: post.actionId },
          stateEnv,
          temp,
        );
        this.results.push(result);
        postResults.push(result);
      }
    } finally {
      const dirs = this.dirs ? await this.dirs : undefined;
      if (dirs?.ownRoot) await rm(dirs.ownRoot, { recursive: true, force: true });
    }
    return postResults;
  }

  // -------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.finished) throw new Error('runner: this job has already finished');
  }

  private log(message: string): void {
    if (this.opts.echo) process.stdout.write(`[runner] ${message}\n`);
  }

  private actionIdFor(id?: string): string {
    const base = id ?? '__self';
    const count = (this.actionIds.get(base) ?? 0) + 1;
    this.actionIds.set(base, count);
    return count === 1 ? base : `${base}_${count}`;
  }

  private directories(): Promise<{ temp: string; toolCache: string; ownRoot?: string }> {
    this.dirs ??= (async () => {
      let ownRoot: string | undefined;
      const own = async (name: string): Promise<string> => {
        ownRoot ??= await mkdtemp(path.join(tmpdir(), 'clyde-runner-'));
        const dir = path.join(ownRoot, name);
        await mkdir(dir, { recursive: true });
        return dir;
      };
      const temp = this.opts.runnerTemp ?? (await own('temp'));
      const toolCache = this.opts.toolCache ?? (await own('tool-cache'));
      await mkdir(temp, { recursive: true });
      await mkdir(toolCache, { recursive: true });
      const eventPath = path.join(temp, '_github_workflow', 'event.json');
      await mkdir(path.dirname(eventPath), { recursive: true });
      await writeFile(eventPath, '{}\n');
      return ownRoot ? { temp, toolCache, ownRoot } : { temp, toolCache };
    })();
    return this.dirs;
  }

  /** The runner's own variables for every step (before opts.env and GITHUB_ENV exports). */
  private async contextEnv(): Promise<Record<string, string>> {
    const { temp, toolCache } = await this.directories();
    const repository = this.opts.repository ?? 'octo/demo';
    const ref = this.opts.ref ?? 'refs/heads/main';
    const refMatch = /^refs\/(heads|tags|pull)\/(.*)$/.exec(ref);
    return {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: this.opts.workspace,
      GITHUB_REPOSITORY: repository,
      GITHUB_REPOSITORY_OWNER: repository.split('/')[0] ?? repository,
      GITHUB_REF: ref,
      GITHUB_REF_NAME: refMatch ? (refMatch[2] as string) : ref,
      GITHUB_REF_TYPE: refMatch?.[1] === 'tags' ? 'tag' : 'branch',
      GITHUB_SHA: createHash('sha1').update(`${repository}\0${ref}`).digest('hex'),
      GITHUB_RUN_ID: this.runId,
      GITHUB_RUN_NUMBER: '1',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: this.opts.jobId ?? 'test',
      GITHUB_WORKFLOW: 'emulated',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_EVENT_PATH: path.join(temp, '_github_workflow', 'event.json'),
      GITHUB_ACTOR: 'octocat',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: 'https://api.github.com',
      GITHUB_GRAPHQL_URL: 'https://api.github.com/graphql',
      RUNNER_TEMP: temp,
      RUNNER_TOOL_CACHE: toolCache,
      RUNNER_OS: runnerOs(),
      RUNNER_ARCH: runnerArch(),
      RUNNER_NAME: 'clyde-emulated-runner',
      // A runner whose disk (and so the local store) outlives the job, unless a test says
      // otherwise with `env: { RUNNER_ENVIRONMENT: 'github-hosted' }`.
      RUNNER_ENVIRONMENT: 'self-hosted',
    };
  }

  /**
   * base host env < runner context < opts.env < GITHUB_ENV exports (which cannot replace the
   * runner's own variables) < step variables; PATH gets GITHUB_PATH additions in front.
   */
  private composeEnv(
    contextEnv: Record<string, string>,
    stepVars: Record<string, string>,
  ): Record<string, string> {
    const env: Record<string, string> = {};
    const names = process.platform === 'win32' ? [...BASE_ENV, ...BASE_ENV_WINDOWS] : BASE_ENV;
    for (const name of names) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    Object.assign(env, contextEnv, this.opts.env ?? {});
    for (const [name, value] of Object.entries(this.exported)) {
      if (!Object.hasOwn(contextEnv, name)) env[name] = value;
    }
    Object.assign(env, stepVars);
    if (this.addedPath.length > 0) {
      env.PATH = [...this.addedPath, env.PATH ?? ''].filter((p) => p !== '').join(path.delimiter);
    }
    return env;
  }

  private async evaluationContext(): Promise<EvaluationContext> {
    const contextEnv = await this.contextEnv();
    return {
      status: this.jobStatus,
      contexts: {
        job: { status: this.jobStatus },
        // The env context holds workflow env and GITHUB_ENV exports, not the runner's variables.
        env: { ...(this.opts.env ?? {}), ...this.exported },
        github: {
          workspace: contextEnv.GITHUB_WORKSPACE ?? '',
          repository: contextEnv.GITHUB_REPOSITORY ?? '',
          ref: this.opts.env?.GITHUB_REF ?? contextEnv.GITHUB_REF ?? '',
          sha: contextEnv.GITHUB_SHA ?? '',
          run_id: contextEnv.GITHUB_RUN_ID ?? '',
          job: contextEnv.GITHUB_JOB ?? '',
          event_name: contextEnv.GITHUB_EVENT_NAME ?? '',
          token: this.opts.env?.GITHUB_TOKEN ?? '',
        },
        runner: {
          os: contextEnv.RUNNER_OS ?? '',
          arch: contextEnv.RUNNER_ARCH ?? '',
          temp: contextEnv.RUNNER_TEMP ?? '',
          tool_cache: contextEnv.RUNNER_TOOL_CACHE ?? '',
          name: contextEnv.RUNNER_NAME ?? '',
        },
      },
    };
  }

  private inputEnv(
    action: ActionDefinition,
    withInputs: Record<string, string>,
    ctx: EvaluationContext,
    warnings: Annotation[],
  ): Record<string, string> {
    // Defaults and `with` values may hold ${{ }} templates (e.g. ${{ github.token }}).
    const evaluate = (value: string): string =>
      value.includes('${{') ? interpolate(value, ctx) : value;
    // Input ids match case-insensitively, as in the runner.
    const declared = new Map<string, string>();
    for (const id of action.inputs.keys()) declared.set(id.toLowerCase(), id);
    const values = new Map<string, string>();
    for (const [id, input] of action.inputs) {
      if (input.default !== undefined) values.set(id, evaluate(input.default));
    }
    const unexpected: string[] = [];
    for (const [given, value] of Object.entries(withInputs)) {
      const id = declared.get(given.toLowerCase());
      if (id === undefined) {
        // The runner warns, and still passes the input to the action as INPUT_<NAME>.
        unexpected.push(given);
        values.set(given, evaluate(value));
        continue;
      }
      values.set(id, evaluate(value));
      const deprecation = action.inputs.get(id)?.deprecationMessage;
      if (deprecation) {
        warnings.push({
          level: 'warning',
          message: `Input '${id}' has been deprecated with message: ${deprecation}`,
        });
      }
    }
    if (unexpected.length > 0) {
      const valid = [...action.inputs.keys()].map((id) => `'${id}'`).join(', ');
      warnings.push({
        level: 'warning',
        message: `Unexpected input(s) ${unexpected.map((id) => `'${id}'`).join(', ')}, valid inputs are [${valid}]`,
      });
    }
    return Object.fromEntries([...values].map(([id, value]) => [inputEnvName(id), value]));
  }

  private async createStepFiles(temp: string): Promise<StepFiles> {
    const dir = path.join(temp, '_runner_file_commands');
    await mkdir(dir, { recursive: true });
    const paths = {} as Record<FileCommand, string>;
    for (const [variable, prefix] of Object.entries(FILE_COMMANDS) as [FileCommand, string][]) {
      const file = path.join(dir, `${prefix}_${randomUUID()}`);
      await writeFile(file, '');
      paths[variable] = file;
    }
    return { dir, paths };
  }

  private async collectFileCommands(files: StepFiles): Promise<{
    outputs: Record<string, string>;
    state: Record<string, string>;
    exportedEnv: Record<string, string>;
    addedPath: string[];
    summary: string;
  }> {
    const read = async (variable: FileCommand): Promise<string> => {
      try {
        return await readFile(files.paths[variable], 'utf8');
      } catch {
        return '';
      }
    };
    const parse = async (variable: FileCommand): Promise<Record<string, string>> => {
      try {
        return parseFileCommand(await read(variable));
      } catch (error) {
        throw new FileCommandError(`${variable}: ${(error as Error).message}`, { cause: error });
      }
    };
    const outputs = await parse('GITHUB_OUTPUT');
    const state = await parse('GITHUB_STATE');
    const exportedEnv = await parse('GITHUB_ENV');
    const addedPath = (await read('GITHUB_PATH'))
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const summary = await read('GITHUB_STEP_SUMMARY');
    await Promise.all(Object.values(files.paths).map((file) => rm(file, { force: true })));
    return { outputs, state, exportedEnv, addedPath, summary };
  }

  private applyExports(exportedEnv: Record<string, string>, addedPath: string[]): void {
    Object.assign(this.exported, exportedEnv);
    // The runner prepends each added path, so the last one added comes first.
    for (const entry of addedPath) this.addedPath.unshift(entry);
  }

  private async runEntrypoint(
    action: ActionDefinition,
    script: string,
    phase: 'main' | 'post',
    stepVars: Record<string, string>,
    stateEnv: Record<string, string>,
    temp: string,
  ): Promise<StepResult> {
    const files = await this.createStepFiles(temp);
    const contextEnv = await this.contextEnv();
    const env = this.composeEnv(contextEnv, { ...stepVars, ...stateEnv, ...files.paths });
    const binary = action.using === 'node24' ? nodeBinary() : process.execPath;
    const label = `${phase === 'post' ? 'Post ' : ''}${action.name} (${path.basename(script)})`;
    this.log(`Run ${label}`);
    const step = this.stepCounter++;
    const { exitCode, stdout, stderr, startError } = await this.spawnStep(
      binary,
      script,
      env,
      step,
    );
    const annotations = [...parseAnnotations(stdout), ...parseAnnotations(stderr)];
    // The runner's own message when the process cannot be started at all.
    if (startError !== undefined) {
      annotations.push({
        level: 'error',
        message: `An error occurred trying to start process '${binary}' with working directory '${this.opts.workspace}'. ${startError}`,
      });
    }
    const result: StepResult = {
      phase,
      exitCode,
      stdout,
      stderr,
      outputs: {},
      state: {},
      exportedEnv: {},
      summary: '',
      annotations,
      skipped: false,
    };
    let failed = exitCode !== 0;
    try {
      const collected = await this.collectFileCommands(files);
      Object.assign(result, {
        outputs: collected.outputs,
        state: collected.state,
        exportedEnv: collected.exportedEnv,
        summary: collected.summary,
      });
      this.applyExports(collected.exportedEnv, collected.addedPath);
      const summaryBytes = Buffer.byteLength(collected.summary);
      if (summaryBytes > SUMMARY_LIMIT_BYTES) {
        annotations.push({
          level: 'error',
          message: `$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k, got ${Math.ceil(summaryBytes / 1024)}k.`,
        });
      }
    } catch (error) {
      failed = true;
      annotations.push({ level: 'error', message: (error as Error).message });
    }
    if (failed) this.jobStatus = 'failure';
    this.log(`${label} exited with ${exitCode}`);
    return result;
  }

  private spawnStep(
    binary: string,
    script: string,
    env: Record<string, string>,
    step: number,
  ): Promise<{ exitCode: number; stdout: string; stderr: string; startError?: string }> {
    const timeoutMs = this.opts.stepTimeoutMs ?? 10 * 60 * 1000;
    const notStarted = (message: string) => ({
      exitCode: 1,
      stdout: '',
      stderr: `[runner] could not start ${binary} (step ${step}): ${message}\n`,
      startError: message,
    });
    const tooBig = oversizedEnv(env);
    if (tooBig !== undefined) return Promise.resolve(notStarted(tooBig));
    return new Promise((resolve, reject) => {
      let child: ChildProcessByStdio<null, Readable, Readable>;
      try {
        child = spawn(binary, [script], {
          cwd: this.opts.workspace,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (error) {
        // execve's own refusals (E2BIG for the whole environment, say) throw synchronously.
        resolve(notStarted((error as Error).message));
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => {
        out.push(chunk);
        if (this.opts.echo) process.stdout.write(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        err.push(chunk);
        if (this.opts.echo) process.stderr.write(chunk);
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`runner: could not start ${binary} (step ${step}): ${error.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        let stderr = Buffer.concat(err).toString('utf8');
        if (timedOut) stderr += `\n[runner] step killed after ${timeoutMs} ms\n`;
        else if (signal) stderr += `\n[runner] step killed by ${signal}\n`;
        resolve({
          exitCode: code ?? 1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr,
        });
      });
    });
  }
}

function emptyResult(phase: 'main' | 'post', skipped: boolean): StepResult {
  return {
    phase,
    exitCode: 0,
    stdout: '',
    stderr: '',
    outputs: {},
    state: {},
    exportedEnv: {},
    summary: '',
    annotations: [],
    skipped,
  };
}
