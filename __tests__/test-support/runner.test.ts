import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ENV_STRING_LIMIT_BYTES,
  Job,
  inputEnvName,
  nodeBinary,
  parseAnnotations,
  parseFileCommand,
} from '../../test-support/runner.js';

// A throwaway action: main reports what it was given through outputs, writes state, env,
// summary and annotations; post reports the state and env it received.
const ACTION_YML = `
name: Throwaway
description: exercises the runner emulation
inputs:
  greeting:
    description: a plain input
    default: hello
  local-cache-dir:
    description: hyphenated id
    default: /default/store
  name with space:
    description: spaces become underscores
    default: spaced
  os-default:
    description: a default holding an expression
    default: \${{ runner.os }}
  export:
    description: value to export as CLYDE_CACHE_SAVE_ON_FAILURE (none when empty)
    default: ''
  fail:
    description: exit 1 when 'true'
    required: false
  job-status:
    description: evaluated again for post, as the runner does
    default: \${{ job.status }}
runs:
  using: node24
  main: main.js
  post: post.js
  post-if: success() || env.CLYDE_CACHE_SAVE_ON_FAILURE == 'true'
`;

const MAIN_JS = `
const fs = require('node:fs');
const env = process.env;
const inputs = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('INPUT_')));
const out = (line) => fs.appendFileSync(env.GITHUB_OUTPUT, line + '\\n');
out('greeting=' + env.INPUT_GREETING);
out('multi<<EOF_1234');
out('line one');
out('line two');
out('EOF_1234');
out('node-major=' + process.versions.node.split('.')[0]);
out('inputs=' + JSON.stringify(inputs));
out('leaked=' + (env.CLYDE_RUNNER_TEST_LEAK ?? ''));
out('seen-export=' + (env.CLYDE_CACHE_SAVE_ON_FAILURE ?? ''));
out('cwd=' + process.cwd());
out('ci=' + [env.CI, env.GITHUB_ACTIONS, env.RUNNER_OS, env.RUNNER_ARCH].join(','));
out('service=' + (env.ACTIONS_RESULTS_URL ?? ''));
fs.appendFileSync(env.GITHUB_STATE, 'saved=from-main\\n');
fs.appendFileSync(env.GITHUB_STATE, 'blob<<S\\n{"a":1}\\nS\\n');
if (env.INPUT_GREETING === 'big-state') fs.appendFileSync(env.GITHUB_STATE, 'big=' + 'x'.repeat(200 * 1024) + '\\n');
if (env.INPUT_EXPORT) fs.appendFileSync(env.GITHUB_ENV, 'CLYDE_CACHE_SAVE_ON_FAILURE=' + env.INPUT_EXPORT + '\\n');
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, '### main summary\\n');
console.log('::warning title=Heads up::careful%0Anext line 100%25');
console.log('::notice::just so you know');
if (env.INPUT_FAIL === 'true') { console.log('::error::asked to fail'); process.exit(1); }
`;

const POST_JS = `
const fs = require('node:fs');
const env = process.env;
fs.appendFileSync(env.GITHUB_OUTPUT, 'state-saved=' + (env.STATE_saved ?? '') + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'state-blob=' + (env.STATE_blob ?? '') + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'seen-export=' + (env.CLYDE_CACHE_SAVE_ON_FAILURE ?? '') + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'job-status=' + (env['INPUT_JOB-STATUS'] ?? '') + '\\n');
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, 'post summary\\n');
`;

let root: string;
let actionDir: string;
let workspace: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'runner-test-'));
  actionDir = path.join(root, 'action');
  workspace = path.join(root, 'workspace');
  await mkdir(actionDir);
  await mkdir(workspace);
  await writeFile(path.join(actionDir, 'action.yml'), ACTION_YML);
  await writeFile(path.join(actionDir, 'main.js'), MAIN_JS);
  await writeFile(path.join(actionDir, 'post.js'), POST_JS);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function inputsOf(outputs: Record<string, string>): Record<string, string> {
  return JSON.parse(outputs.inputs ?? '{}') as Record<string, string>;
}

describe('Job.uses', () => {
  it('applies declared defaults, overrides them from `with`, and names INPUT_ like the runner', async () => {
    const job = new Job({ workspace });
    const result = await job.uses(actionDir, { greeting: 'hi there' });
    expect(result.exitCode).toBe(0);
    const expectedOs = { linux: 'Linux', darwin: 'macOS', win32: 'Windows' }[
      process.platform as 'linux'
    ];
    expect(inputsOf(result.outputs)).toEqual({
      INPUT_GREETING: 'hi there',
      'INPUT_LOCAL-CACHE-DIR': '/default/store',
      INPUT_NAME_WITH_SPACE: 'spaced',
      'INPUT_OS-DEFAULT': expectedOs,
      INPUT_EXPORT: '',
      'INPUT_JOB-STATUS': 'success',
    });
    expect(result.outputs.greeting).toBe('hi there');
    await job.finish();
  });

  it('warns about inputs the action does not declare, and passes them on as the runner does', async () => {
    const job = new Job({ workspace });
    const result = await job.uses(actionDir, { 'no-such-input': 'x' });
    expect(result.annotations).toContainEqual({
      level: 'warning',
      message: expect.stringContaining("Unexpected input(s) 'no-such-input'"),
    });
    // actions/runner's NodeScriptActionHandler sets INPUT_<NAME> for every input given.
    expect(inputsOf(result.outputs)['INPUT_NO-SUCH-INPUT']).toBe('x');
    await job.finish();
  });

  it('parses outputs in both file-command formats, state, summary and annotations', async () => {
    const job = new Job({ workspace });
    const result = await job.uses(actionDir);
    expect(result.outputs.multi).toBe('line one\nline two');
    expect(result.state).toEqual({ saved: 'from-main', blob: '{"a":1}' });
    expect(result.summary).toBe('### main summary\n');
    expect(result.annotations).toEqual([
      {
        level: 'warning',
        message: 'careful\nnext line 100%',
        properties: { title: 'Heads up' },
      },
      { level: 'notice', message: 'just so you know' },
    ]);
    await job.finish();
  });

  it('runs node24 actions under Node >= 24 in the workspace with a minimal environment', async () => {
    process.env.CLYDE_RUNNER_TEST_LEAK = 'parent-only';
    try {
      const job = new Job({ workspace, env: { ACTIONS_RESULTS_URL: 'http://127.0.0.1:1/' } });
      const result = await job.uses(actionDir);
      expect(Number(result.outputs['node-major'])).toBeGreaterThanOrEqual(24);
      expect(result.outputs.leaked).toBe('');
      expect(await realpath(result.outputs.cwd ?? '')).toBe(await realpath(workspace));
      expect(result.outputs.service).toBe('http://127.0.0.1:1/');
      const [ci, actions, os, arch] = (result.outputs.ci ?? '').split(',');
      expect([ci, actions]).toEqual(['true', 'true']);
      expect(['Linux', 'macOS', 'Windows']).toContain(os);
      expect(['X64', 'ARM64']).toContain(arch);
      await job.finish();
    } finally {
      delete process.env.CLYDE_RUNNER_TEST_LEAK;
    }
  });

  it('hands main state to post as STATE_ variables', async () => {
    const job = new Job({ workspace });
    await job.uses(actionDir);
    const [post] = await job.finish();
    expect(post?.phase).toBe('post');
    expect(post?.skipped).toBe(false);
    expect(post?.outputs['state-saved']).toBe('from-main');
    expect(post?.outputs['state-blob']).toBe('{"a":1}');
    expect(post?.summary).toBe('post summary\n');
  });

  it('fails the job when main exits non-zero and skips later steps, but still evaluates posts', async () => {
    const job = new Job({ workspace });
    const failed = await job.uses(actionDir, { fail: 'true' });
    expect(failed.exitCode).toBe(1);
    expect(failed.annotations).toContainEqual({ level: 'error', message: 'asked to fail' });
    expect(job.status).toBe('failure');
    let ran = false;
    await job.run('after failure', () => {
      ran = true;
    });
    expect(ran).toBe(false);
    const later = await job.uses(actionDir);
    expect(later.skipped).toBe(true);
    const posts = await job.finish();
    // Only the step that ran registered a post; success() is false and nothing was exported.
    expect(posts).toHaveLength(1);
    expect(posts[0]?.skipped).toBe(true);
  });
});

describe("Linux's 128 KiB limit on one environment variable", () => {
  const startError = {
    level: 'error',
    message: expect.stringMatching(
      /^An error occurred trying to start process .*E2BIG.*INPUT_GREETING/,
    ),
  };

  it('starts a step whose largest variable is exactly at the limit, and no larger', async () => {
    // 'INPUT_GREETING=' + value + NUL: the whole string counts.
    const fits = 'x'.repeat(ENV_STRING_LIMIT_BYTES - 'INPUT_GREETING='.length - 1);
    const job = new Job({ workspace });
    const ok = await job.uses(actionDir, { greeting: fits });
    expect(ok.exitCode).toBe(0);
    expect(ok.outputs.greeting).toBe(fits);
    const tooBig = await new Job({ workspace }).uses(actionDir, { greeting: `${fits}x` });
    expect(tooBig.exitCode).not.toBe(0);
    expect(tooBig.annotations).toContainEqual(startError);
    await job.finish();
  });

  it('cannot start a post whose STATE_ variable is over the limit, and fails the job', async () => {
    const job = new Job({ workspace });
    const main = await job.uses(actionDir, { greeting: 'big-state' });
    expect(main.exitCode).toBe(0);
    const [post] = await job.finish();
    expect(post?.skipped).toBe(false);
    expect(post?.exitCode).not.toBe(0);
    expect(post?.annotations).toContainEqual({
      level: 'error',
      message: expect.stringMatching(/E2BIG.*STATE_big takes 204811 bytes/),
    });
    expect(job.status).toBe('failure');
  });
});

describe('GITHUB_ENV exports and post-if', () => {
  it('makes an export visible to later run steps, later actions and the post', async () => {
    const job = new Job({ workspace });
    const first = await job.uses(actionDir, { export: 'maybe' });
    expect(first.exportedEnv).toEqual({ CLYDE_CACHE_SAVE_ON_FAILURE: 'maybe' });
    expect(first.outputs['seen-export']).toBe('');
    let seen: string | undefined;
    await job.run('look', ({ env }) => {
      seen = env.CLYDE_CACHE_SAVE_ON_FAILURE;
    });
    expect(seen).toBe('maybe');
    const second = await job.uses(actionDir);
    expect(second.outputs['seen-export']).toBe('maybe');
    const posts = await job.finish();
    expect(posts.map((p) => p.outputs['seen-export'])).toEqual(['maybe', 'maybe']);
  });

  it('skips a success() post after a failing run step', async () => {
    const job = new Job({ workspace });
    await job.uses(actionDir);
    await job.run('build', () => {
      throw new Error('compiler exploded');
    });
    expect(job.status).toBe('failure');
    const [post] = await job.finish();
    expect(post?.skipped).toBe(true);
    expect(post?.outputs).toEqual({});
  });

  it("runs the post after a failure when post-if's env.X == 'true' holds", async () => {
    const job = new Job({ workspace });
    await job.uses(actionDir, { export: 'true' });
    await job.run('build', () => {
      throw new Error('compiler exploded');
    });
    const [post] = await job.finish();
    expect(post?.skipped).toBe(false);
    expect(post?.outputs['state-saved']).toBe('from-main');
    // Inputs are evaluated again for post: a default of ${{ job.status }} tells post the job failed.
    expect(post?.outputs['job-status']).toBe('failure');
  });

  it('takes exports written by a run step to GITHUB_ENV and GITHUB_PATH', async () => {
    const job = new Job({ workspace });
    await job.uses(actionDir);
    let env: Record<string, string> = {};
    await job.run('export', async (ctx) => {
      await appendFile(ctx.env.GITHUB_ENV as string, 'CLYDE_CACHE_SAVE_ON_FAILURE<<X\ntrue\nX\n');
      await appendFile(ctx.env.GITHUB_PATH as string, '/opt/extra/bin\n');
    });
    await job.run('fail', (ctx) => {
      env = ctx.env;
      throw new Error('boom');
    });
    expect(env.CLYDE_CACHE_SAVE_ON_FAILURE).toBe('true');
    expect(env.PATH?.split(path.delimiter)[0]).toBe('/opt/extra/bin');
    const [post] = await job.finish();
    expect(post?.skipped).toBe(false);
  });

  it('does not give run steps the ACTIONS_* runtime variables', async () => {
    const job = new Job({ workspace, env: { ACTIONS_RESULTS_URL: 'http://x/', OTHER: 'kept' } });
    let env: Record<string, string> = {};
    await job.run('look', (ctx) => {
      env = ctx.env;
    });
    expect(env.ACTIONS_RESULTS_URL).toBeUndefined();
    expect(env.OTHER).toBe('kept');
    await job.finish();
  });

  it('rejects an action whose post-if cannot be parsed', async () => {
    const dir = path.join(root, 'bad-post-if');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'action.yml'),
      (await readFile(path.join(actionDir, 'action.yml'), 'utf8')).replace(
        /post-if: .*/,
        "post-if: success() && env.X == 'unterminated",
      ),
    );
    await writeFile(path.join(dir, 'main.js'), MAIN_JS);
    await writeFile(path.join(dir, 'post.js'), POST_JS);
    const job = new Job({ workspace });
    await expect(job.uses(dir)).rejects.toThrow(/post-if.*unterminated string/);
  });
});

describe('parsers', () => {
  it('parses name=value and heredoc file commands, CRLF included', () => {
    expect(parseFileCommand('a=1\nb=x=y\n\nc<<EOT\r\nl1\r\nl2\r\nEOT\r\nd=\n')).toEqual({
      a: '1',
      b: 'x=y',
      c: 'l1\r\nl2',
      d: '',
    });
  });

  it('rejects a heredoc without its delimiter and a line without = or <<', () => {
    expect(() => parseFileCommand('c<<EOT\nvalue\n')).toThrow(/Matching delimiter not found/);
    expect(() => parseFileCommand('just a line\n')).toThrow(/Invalid format/);
  });

  it('parses annotations with properties and honours stop-commands', () => {
    const out = [
      '::error file=src/a.ts,line=3,title=Bad%3A thing::first%0Asecond',
      '::stop-commands::tok',
      '::warning::ignored',
      '::tok::',
      '::debug::not an annotation',
      '  ::notice::indented',
    ].join('\n');
    expect(parseAnnotations(out)).toEqual([
      {
        level: 'error',
        message: 'first\nsecond',
        properties: { file: 'src/a.ts', line: '3', title: 'Bad: thing' },
      },
      { level: 'notice', message: 'indented' },
    ]);
  });

  it('names input variables as the runner does', () => {
    expect(inputEnvName('local-cache-dir')).toBe('INPUT_LOCAL-CACHE-DIR');
    expect(inputEnvName('my input')).toBe('INPUT_MY_INPUT');
  });
});

describe('nodeBinary', () => {
  it('is a Node 24 or newer binary', () => {
    const result = spawnSync(nodeBinary(), ['-p', 'process.versions.node'], { encoding: 'utf8' });
    expect(Number(result.stdout.split('.')[0])).toBeGreaterThanOrEqual(24);
  });
});
