/**
 * The `env` and `toolchain` components: the build environment as far as the user names it.
 *
 * env: one `env:<NAME>` component per variable, hashed over whether it is set and its value.
 * The value itself never appears anywhere (it may be a secret): the component's display value
 * is only 'set' or 'unset'.
 *
 * toolchain: one `toolchain:<command>` component per command, run once through the platform
 * shell in the workspace with a timeout; hashed over its stdout (trimmed, CRLF -> LF). Its first
 * line is the display value. A command that fails, times out or is missing is an InputError.
 */
import { exec } from 'node:child_process';
import { InputError } from '../errors.js';
import { sha256, sortBytes } from '../util/bytes.js';
import { displayValue } from './canonical.js';
import type { KeyComponent } from './types.js';

export const TOOLCHAIN_TIMEOUT_MS = 60_000;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function envComponents(
  names: readonly string[],
  values: Readonly<Record<string, string | undefined>>,
): KeyComponent[] {
  const wanted = new Set<string>();
  for (const raw of names) {
    const name = raw.trim();
    if (name === '' || name.startsWith('#')) continue;
    if (!ENV_NAME.test(name)) {
      throw new InputError(
        'env',
        `'${raw}' is not an environment variable name (letters, digits and _, not starting ` +
          `with a digit)`,
      );
    }
    wanted.add(name);
  }
  return sortBytes(wanted).map((name) => {
    const value = Object.prototype.hasOwnProperty.call(values, name) ? values[name] : undefined;
    return {
      kind: 'env',
      name: `env:${name}`,
      hash: sha256(
        value === undefined ? `clyde-env\0${name}\0unset` : `clyde-env\0${name}\0set\0${value}`,
      ),
      value: value === undefined ? 'unset' : 'set',
    };
  });
}

/** Runs each distinct command once (concurrently); components in byte order of command. */
export async function toolchainComponents(
  commands: readonly string[],
  cwd: string,
  timeoutMs = TOOLCHAIN_TIMEOUT_MS,
): Promise<KeyComponent[]> {
  const wanted = sortBytes(
    new Set(commands.map((c) => c.trim()).filter((c) => c !== '' && !c.startsWith('#'))),
  );
  const outputs = await Promise.allSettled(wanted.map((c) => runTool(c, cwd, timeoutMs)));
  return wanted.map((command, i) => {
    const result = outputs[i] as PromiseSettledResult<string>;
    if (result.status === 'rejected') throw result.reason;
    const text = result.value;
    return {
      kind: 'toolchain',
      name: `toolchain:${command}`,
      hash: sha256(text),
      value: displayValue(text.split('\n', 1)[0] ?? ''),
    };
  });
}

/** stdout of `command`, CRLF -> LF and trimmed; InputError naming the command on failure. */
function runTool(command: string, cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    exec(
      command,
      { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout.replace(/\r\n/g, '\n').trim());
          return;
        }
        const detail = stderr.trim().split('\n').slice(-3).join(' ');
        const code = (err as { code?: unknown }).code;
        let what: string;
        if (err.killed && err.signal !== null) {
          what = `did not finish within ${timeoutMs / 1000} s (killed with ${err.signal})`;
        } else if (code === 127 || /not (found|recognized)/i.test(detail)) {
          what = `could not be run: command not found`;
        } else if (typeof code === 'number') {
          what = `exited with code ${code}`;
        } else if (err.signal !== null && err.signal !== undefined) {
          what = `was killed by ${err.signal}`;
        } else {
          what = `failed: ${err.message}`;
        }
        reject(
          new InputError(
            'toolchain',
            `the command '${command}' ${what}${detail !== '' ? `: ${displayValue(detail, 300)}` : ''}`,
          ),
        );
      },
    );
  });
}
