// Validates every action.yml (root, restore/, save/, gc/) and every workflow file in
// .github/workflows/ with action-validator, one line per file; exits 1 if any fails.
//
//   node build/scripts/validate-actions.js [root]      (npm run validate-actions)
//
// action-validator takes one file per run, treats a file named action.yml/action.yaml as an
// action and anything else as a workflow, prints its findings as JSON on stderr and exits 1.
// Its 0.6 schema predates `using: node24`: an action rejected only for that is validated again
// with node20 in its place (the line is rewritten in a temporary copy), and reported as such.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const ACTION_DIRS = ['.', 'restore', 'save', 'gc'];
export const WORKFLOW_DIR = path.join('.github', 'workflows');

export interface ValidationResult {
  /** Path relative to the root, with forward slashes. */
  file: string;
  ok: boolean;
  /** One line per finding, e.g. "/runs/using: Enum conditions are not met". */
  problems: string[];
  /** Set when the file passed only after the node24 -> node20 rewrite. */
  note?: string;
}

interface ValidatorError {
  code?: string;
  path?: string;
  title?: string;
  detail?: string;
  location?: { line: number; column: number };
  states?: { errors?: ValidatorError[] }[];
}

/** action-validator's CLI script, found in node_modules above this file. */
export function findValidator(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const cli = path.join(dir, 'node_modules', '@action-validator', 'cli', 'cli.mjs');
    if (existsSync(cli)) return cli;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        'action-validator is not installed (node_modules/@action-validator/cli): run npm ci',
      );
    }
    dir = parent;
  }
}

/** The files to validate, relative to root, in a stable order. */
export function findTargets(root: string): string[] {
  const targets: string[] = [];
  for (const dir of ACTION_DIRS) {
    for (const name of ['action.yml', 'action.yaml']) {
      if (existsSync(path.join(root, dir, name))) targets.push(path.posix.join(dir, name));
    }
  }
  const workflows = path.join(root, WORKFLOW_DIR);
  if (existsSync(workflows)) {
    const names = readdirSync(workflows, { withFileTypes: true })
      .filter((entry) => entry.isFile() && /\.ya?ml$/.test(entry.name))
      .map((entry) => entry.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) targets.push(`.github/workflows/${name}`);
  }
  return targets;
}

function describeError(error: ValidatorError): string[] {
  if (error.states && error.states.length > 0) {
    // A oneOf failure lists every alternative; the one with the fewest findings is what the
    // author most likely meant.
    const closest = [...error.states].sort(
      (a, b) => (a.errors?.length ?? 0) - (b.errors?.length ?? 0),
    )[0];
    const nested = (closest?.errors ?? []).flatMap(describeError);
    if (nested.length > 0) return nested;
  }
  const where = error.location
    ? `line ${error.location.line} column ${error.location.column}`
    : error.path || '/';
  const detail = error.detail ? ` (${error.detail})` : '';
  return [`${where}: ${error.title ?? error.code ?? 'invalid'}${detail}`];
}

/** Runs the validator on one file: problems, or [] when it passes. */
function runValidator(validator: string, file: string): string[] {
  const result = spawnSync(process.execPath, [validator, file], { encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status === 0) return [];
  try {
    const parsed = JSON.parse(result.stderr) as { errors?: ValidatorError[] };
    const problems = (parsed.errors ?? []).flatMap(describeError);
    if (problems.length > 0) return problems;
  } catch {
    // Not the JSON report: fall through to the raw output.
  }
  const raw = `${result.stderr}${result.stdout}`.trim();
  return [raw || `action-validator exited with ${result.status ?? result.signal}`];
}

function usesNode24(text: string): boolean {
  try {
    const doc = parseYaml(text) as { runs?: { using?: unknown } } | null;
    return doc?.runs?.using === 'node24';
  } catch {
    return false;
  }
}

/** Validates one file (relative to root). */
export function validateFile(
  root: string,
  file: string,
  validator = findValidator(),
): ValidationResult {
  const absolute = path.join(root, file);
  const problems = runValidator(validator, absolute);
  if (problems.length === 0) return { file, ok: true, problems };
  const isAction = /(^|\/)action\.ya?ml$/.test(file);
  const text = readFileSync(absolute, 'utf8');
  if (!isAction || !usesNode24(text)) return { file, ok: false, problems };
  // Same line count, so any remaining finding's line numbers still point into the original.
  const rewritten = text.replace(
    /^(\s*using\s*:\s*)(['"]?)node24\2(\s*(#.*)?)$/m,
    (_line, head: string, quote: string, tail: string) => `${head}${quote}node20${quote}${tail}`,
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'validate-actions-'));
  try {
    const copy = path.join(dir, path.basename(file));
    writeFileSync(copy, rewritten);
    const retried = runValidator(validator, copy);
    if (retried.length > 0) return { file, ok: false, problems: retried };
    return {
      file,
      ok: true,
      problems: [],
      note: 'using: node24 checked as node20 (action-validator 0.6 does not know node24 yet)',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Validates everything under root, printing one line per file; returns the exit code. */
export function main(root: string, log: (line: string) => void = console.log): number {
  const targets = findTargets(root);
  if (targets.length === 0) {
    log(`validate-actions: no action.yml or workflow files under ${root}`);
    return 1;
  }
  const validator = findValidator();
  let failures = 0;
  for (const file of targets) {
    const result = validateFile(root, file, validator);
    if (result.ok) {
      log(`ok    ${file}${result.note ? `  [${result.note}]` : ''}`);
    } else {
      failures++;
      log(`FAIL  ${file}`);
      for (const problem of result.problems) log(`        ${problem}`);
    }
  }
  log(`validate-actions: ${targets.length - failures} of ${targets.length} files valid`);
  return failures === 0 ? 0 : 1;
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  process.exitCode = main(path.resolve(process.argv[2] ?? process.cwd()));
}
