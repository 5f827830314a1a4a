import { describe, expect, it } from '@jest/globals';
import {
  interpolate,
  parseCondition,
  parseExpression,
  type EvaluationContext,
  type JobStatus,
} from '../../test-support/expressions.js';

function ctx(status: JobStatus, env: Record<string, string> = {}): EvaluationContext {
  return { status, contexts: { env, runner: { os: 'Linux' } } };
}

describe('parseCondition', () => {
  const cases: [string, JobStatus, Record<string, string>, boolean][] = [
    ['success()', 'success', {}, true],
    ['success()', 'failure', {}, false],
    ['failure()', 'failure', {}, true],
    ['always()', 'failure', {}, true],
    ['cancelled()', 'failure', {}, false],
    ['!cancelled()', 'failure', {}, true],
    ["success() || env.SAVE == 'true'", 'failure', { SAVE: 'true' }, true],
    ["success() || env.SAVE == 'true'", 'failure', { SAVE: 'false' }, false],
    ["success() || env.SAVE == 'true'", 'failure', {}, false],
    ["success() || env.SAVE == 'true'", 'success', {}, true],
    ["env.SAVE == 'TRUE'", 'success', { SAVE: 'true' }, true], // strings compare ignoring case
    ["env.SAVE != 'yes'", 'success', {}, true], // a missing property is null
    ["env.SAVE == 'true'", 'failure', { SAVE: 'true' }, false], // implicit success() &&
    ["always() && (env.A == 'x' || !(env.B != 'y'))", 'failure', { B: 'y' }, true],
    ["${{ failure() && env.A == 'x' }}", 'failure', { A: 'x' }, true],
    ['env.FLAG', 'success', { FLAG: '' }, false],
    ['env.FLAG', 'success', { FLAG: 'on' }, true],
    ["env.N == 1 && 'it''s' == 'IT''S'", 'success', { N: '1' }, true],
  ];
  it.each(cases)('%s with status %s and env %j is %s', (source, status, env, expected) => {
    expect(parseCondition(source).evaluate(ctx(status, env))).toBe(expected);
  });

  it.each([
    ["env.X == 'open", /unterminated string/],
    ['success(', /expected '\)'/],
    ['success() &&', /expected a value/],
    ['hashFiles()', /unsupported function 'hashFiles\(\)'/],
    ['env', /context property/],
    ['env.X = 1', /unexpected character '='/],
    ['', /empty expression/],
  ])('rejects %j with a clear error', (source, message) => {
    expect(() => parseCondition(source)).toThrow(message);
  });

  it('names an unknown context when evaluated', () => {
    expect(() => parseExpression('vars.X').evaluate(ctx('success'))).toThrow(
      /unrecognized named-value 'vars'/,
    );
  });
});

describe('interpolate', () => {
  it('replaces each ${{ }} with its value', () => {
    expect(interpolate('os=${{ runner.os }} x=${{ env.X }}!', ctx('success', { X: '1' }))).toBe(
      'os=Linux x=1!',
    );
  });
});
