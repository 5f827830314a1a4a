import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTargets, main, validateFile } from '../../scripts/validate-actions.js';

const NODE24_ACTION = `name: Example
description: a valid node24 action
inputs:
  path:
    description: what to cache
    required: true
runs:
  using: 'node24' # the runner's current Node
  main: dist/restore/index.js
  post: dist/save/index.js
  post-if: success()
`;

const BAD_ACTION = `name: Broken
runs:
  using: node24
  main: dist/index.js
`;

const GOOD_WORKFLOW = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make
`;

const BAD_WORKFLOW = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: make
        shel: bash
`;

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'validate-actions-test-'));
  await mkdir(path.join(root, 'save'));
  await mkdir(path.join(root, 'unrelated'));
  await mkdir(path.join(root, '.github', 'workflows'), { recursive: true });
  await writeFile(path.join(root, 'action.yml'), NODE24_ACTION);
  await writeFile(path.join(root, 'save', 'action.yml'), BAD_ACTION);
  await writeFile(path.join(root, 'unrelated', 'action.yml'), BAD_ACTION);
  await writeFile(path.join(root, '.github', 'workflows', 'good.yml'), GOOD_WORKFLOW);
  await writeFile(path.join(root, '.github', 'workflows', 'bad.yaml'), BAD_WORKFLOW);
  await writeFile(path.join(root, '.github', 'workflows', 'notes.txt'), 'not a workflow');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('validate-actions', () => {
  it('finds the action files in the known folders and every workflow', () => {
    expect(findTargets(root)).toEqual([
      'action.yml',
      'save/action.yml',
      '.github/workflows/bad.yaml',
      '.github/workflows/good.yml',
    ]);
  });

  it('accepts a node24 action, noting that it was checked as node20', () => {
    const result = validateFile(root, 'action.yml');
    expect(result.ok).toBe(true);
    expect(result.note).toMatch(/node24 checked as node20/);
  });

  it('reports what is wrong with an invalid action', () => {
    const result = validateFile(root, 'save/action.yml');
    expect(result.ok).toBe(false);
    expect(result.problems).toContain('/description: This property is required');
  });

  it('reports the closest alternative for an invalid workflow step', () => {
    const result = validateFile(root, '.github/workflows/bad.yaml');
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/Additional property 'shel' is not allowed/);
  });

  it('prints one line per file and fails when any file fails', () => {
    const lines: string[] = [];
    expect(main(root, (line) => lines.push(line))).toBe(1);
    expect(lines.filter((line) => /^(ok|FAIL) /.test(line))).toEqual([
      'ok    action.yml  [using: node24 checked as node20 (action-validator 0.6 does not know node24 yet)]',
      'FAIL  save/action.yml',
      'FAIL  .github/workflows/bad.yaml',
      'ok    .github/workflows/good.yml',
    ]);
  });

  it("passes this repository's own workflows", () => {
    const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    for (const file of ['.github/workflows/ci.yml', '.github/workflows/e2e.yml']) {
      expect(validateFile(repo, file)).toEqual({ file, ok: true, problems: [] });
    }
  });
});
