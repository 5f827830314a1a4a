// A small evaluator for the GitHub Actions expression language, enough for `post-if`
// conditions and `${{ }}` templates in input defaults. Test support only: never imported by src/.
//
// Supported: the status functions success(), failure(), always(), cancelled(); `!`, `&&`,
// `||`, parentheses, `==` and `!=`; literals 'single-quoted strings' (with '' for a quote),
// numbers, true, false, null; and dotted context access such as env.NAME or runner.os.
// Semantics follow the runner's: string comparison ignores case, values of different types are
// compared as numbers, `&&`/`||` return an operand, a missing property is null, and a condition
// without a status function is implicitly `success() && (<condition>)`.

export type ExprValue = string | number | boolean | null;

export type JobStatus = 'success' | 'failure' | 'cancelled';

export interface EvaluationContext {
  status: JobStatus;
  /** Named contexts (env, github, runner, ...): each maps a property name to its value. */
  contexts: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export class ExpressionError extends Error {
  override name = 'ExpressionError';
  constructor(source: string, message: string) {
    super(`invalid expression \`${source}\`: ${message}`);
  }
}

type Node =
  | { kind: 'literal'; value: ExprValue }
  | { kind: 'call'; fn: StatusFunction }
  | { kind: 'context'; path: string[] }
  | { kind: 'not'; operand: Node }
  | { kind: 'binary'; op: '&&' | '||' | '==' | '!='; left: Node; right: Node };

const STATUS_FUNCTIONS = ['success', 'failure', 'always', 'cancelled'] as const;
type StatusFunction = (typeof STATUS_FUNCTIONS)[number];

/** A parsed expression, ready to be evaluated any number of times. */
export interface Expression {
  readonly source: string;
  readonly usesStatusFunction: boolean;
  evaluate(ctx: EvaluationContext): ExprValue;
}

type Token =
  | { type: 'string'; value: string; pos: number }
  | { type: 'number'; value: number; pos: number }
  | { type: 'ident'; value: string; pos: number }
  | { type: 'op'; value: string; pos: number };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= source.length) {
          throw new ExpressionError(source, `unterminated string starting at ${i}`);
        }
        if (source[j] === "'") {
          if (source[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += source[j];
        j++;
      }
      tokens.push({ type: 'string', value, pos: i });
      i = j + 1;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === '&&' || two === '||' || two === '==' || two === '!=') {
      tokens.push({ type: 'op', value: two, pos: i });
      i += 2;
      continue;
    }
    if (ch === '!' || ch === '(' || ch === ')' || ch === '.') {
      tokens.push({ type: 'op', value: ch, pos: i });
      i++;
      continue;
    }
    const number = /^\d+(\.\d+)?/.exec(source.slice(i));
    if (number) {
      tokens.push({ type: 'number', value: Number(number[0]), pos: i });
      i += number[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i));
    if (ident) {
      tokens.push({ type: 'ident', value: ident[0], pos: i });
      i += ident[0].length;
      continue;
    }
    throw new ExpressionError(source, `unexpected character '${ch}' at ${i}`);
  }
  return tokens;
}

class Parser {
  private index = 0;
  usesStatusFunction = false;

  constructor(
    private readonly source: string,
    private readonly tokens: Token[],
  ) {}

  parse(): Node {
    if (this.tokens.length === 0) throw new ExpressionError(this.source, 'empty expression');
    const node = this.parseOr();
    const rest = this.tokens[this.index];
    if (rest) this.fail(rest, 'expected end of expression');
    return node;
  }

  private fail(token: Token | undefined, message: string): never {
    const where = token ? `'${String(token.value)}' at ${token.pos}` : 'end of expression';
    throw new ExpressionError(this.source, `${message}, found ${where}`);
  }

  private peekOp(value: string): boolean {
    const token = this.tokens[this.index];
    return token?.type === 'op' && token.value === value;
  }

  private expectOp(value: string): void {
    if (!this.peekOp(value)) this.fail(this.tokens[this.index], `expected '${value}'`);
    this.index++;
  }

  private parseOr(): Node {
    let left = this.parseAnd();
    while (this.peekOp('||')) {
      this.index++;
      left = { kind: 'binary', op: '||', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Node {
    let left = this.parseEquality();
    while (this.peekOp('&&')) {
      this.index++;
      left = { kind: 'binary', op: '&&', left, right: this.parseEquality() };
    }
    return left;
  }

  private parseEquality(): Node {
    let left = this.parseUnary();
    for (;;) {
      const op = this.peekOp('==') ? '==' : this.peekOp('!=') ? '!=' : undefined;
      if (!op) return left;
      this.index++;
      left = { kind: 'binary', op, left, right: this.parseUnary() };
    }
  }

  private parseUnary(): Node {
    if (this.peekOp('!')) {
      this.index++;
      return { kind: 'not', operand: this.parseUnary() };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Node {
    const token = this.tokens[this.index];
    if (!token) this.fail(token, 'expected a value');
    this.index++;
    switch (token.type) {
      case 'string':
      case 'number':
        return { kind: 'literal', value: token.value };
      case 'op':
        if (token.value === '(') {
          const inner = this.parseOr();
          this.expectOp(')');
          return inner;
        }
        return this.fail(token, 'expected a value');
      case 'ident':
        return this.parseIdentifier(token.value, token);
    }
  }

  private parseIdentifier(name: string, token: Token): Node {
    if (name === 'true') return { kind: 'literal', value: true };
    if (name === 'false') return { kind: 'literal', value: false };
    if (name === 'null') return { kind: 'literal', value: null };
    if (this.peekOp('(')) {
      this.index++;
      this.expectOp(')');
      const fn = STATUS_FUNCTIONS.find((f) => f === name.toLowerCase());
      if (!fn) {
        throw new ExpressionError(
          this.source,
          `unsupported function '${name}()' (supported: ${STATUS_FUNCTIONS.map((f) => `${f}()`).join(', ')})`,
        );
      }
      this.usesStatusFunction = true;
      return { kind: 'call', fn };
    }
    const path = [name];
    while (this.peekOp('.')) {
      this.index++;
      const property = this.tokens[this.index];
      if (property?.type !== 'ident') this.fail(property, `expected a property name after '.'`);
      path.push(property.value);
      this.index++;
    }
    if (path.length !== 2) {
      this.fail(token, `expected a context property such as env.NAME`);
    }
    return { kind: 'context', path };
  }
}

function isTruthy(value: ExprValue): boolean {
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  return Boolean(value);
}

function toNumber(value: ExprValue): number {
  if (value === null) return 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  const trimmed = value.trim();
  return trimmed === '' ? 0 : Number(trimmed);
}

/** The runner's loose equality: case-insensitive for strings, numeric across types. */
export function looselyEqual(a: ExprValue, b: ExprValue): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toUpperCase() === b.toUpperCase();
  if (typeof a === typeof b && typeof a !== 'number') return a === b;
  const x = toNumber(a);
  const y = toNumber(b);
  return !Number.isNaN(x) && !Number.isNaN(y) && x === y;
}

function evaluateNode(node: Node, ctx: EvaluationContext, source: string): ExprValue {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'call':
      return node.fn === 'always' || ctx.status === node.fn;
    case 'context': {
      const [name, property] = node.path as [string, string];
      const context = ctx.contexts[name];
      if (!context) {
        const known = Object.keys(ctx.contexts).join(', ');
        throw new ExpressionError(source, `unrecognized named-value '${name}' (known: ${known})`);
      }
      return Object.hasOwn(context, property) ? (context[property] ?? null) : null;
    }
    case 'not':
      return !isTruthy(evaluateNode(node.operand, ctx, source));
    case 'binary': {
      const left = evaluateNode(node.left, ctx, source);
      if (node.op === '&&') return isTruthy(left) ? evaluateNode(node.right, ctx, source) : left;
      if (node.op === '||') return isTruthy(left) ? left : evaluateNode(node.right, ctx, source);
      const equal = looselyEqual(left, evaluateNode(node.right, ctx, source));
      return node.op === '==' ? equal : !equal;
    }
  }
}

/** Strips an optional `${{ }}` wrapper, as the runner does for `if:` conditions. */
function unwrap(source: string): string {
  const trimmed = source.trim();
  const match = /^\$\{\{([\s\S]*)\}\}$/.exec(trimmed);
  return match ? (match[1] as string).trim() : trimmed;
}

/** Parses an expression; throws ExpressionError naming the expression on any syntax error. */
export function parseExpression(source: string): Expression {
  const text = unwrap(source);
  const parser = new Parser(source, tokenize(text));
  const root = parser.parse();
  return {
    source,
    usesStatusFunction: parser.usesStatusFunction,
    evaluate: (ctx) => evaluateNode(root, ctx, source),
  };
}

/** A parsed `if:`/`post-if:` condition. */
export interface Condition {
  readonly source: string;
  evaluate(ctx: EvaluationContext): boolean;
}

/**
 * Parses a step condition. Like the runner, a condition that calls no status function is
 * evaluated as `success() && (<condition>)`.
 */
export function parseCondition(source: string): Condition {
  const expression = parseExpression(source);
  return {
    source,
    evaluate(ctx) {
      if (!expression.usesStatusFunction && ctx.status !== 'success') return false;
      return isTruthy(expression.evaluate(ctx));
    },
  };
}

/** Formats a value the way the runner does when it lands in a string (input, env). */
export function formatValue(value: ExprValue): string {
  if (value === null) return '';
  return String(value);
}

/** Replaces every `${{ expr }}` in a string with the expression's value. */
export function interpolate(template: string, ctx: EvaluationContext): string {
  return template.replace(/\$\{\{([\s\S]*?)\}\}/g, (_match, inner: string) =>
    formatValue(parseExpression(inner).evaluate(ctx)),
  );
}
