/**
 * The `env` and `toolchain` components: the build environment as far as the user names it.
 *
 * env: one `env:<NAME>` component per variable, hashed over whether it is set and its value.
 * The value itself never appears anywhere (it may be a secret): the component's display value
 * is only 'set' or 'unset'.
 *
 * toolchain: one `toolchain:<command>` component per command, run once through a POSIX shell
 * (`toolchainShell`) in the workspace with a timeout; hashed over its stdout (trimmed, CRLF ->
 * LF). Its first line is the display value. A command that fails, times out or is missing is an
 * InputError.
 */
import { exec } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
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

/** Where toolchain commands run: this machine by default; tests inject Windows. */
export interface ShellHost {
  readonly platform: NodeJS.Platform;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Path rules for the candidates (path.win32 on Windows). */
  readonly path: path.PlatformPath;
  readonly exists: (file: string) => boolean;
}

export const NATIVE_SHELL_HOST: ShellHost = {
  platform: process.platform,
  env: process.env,
  path,
  exists: (file) => existsSync(file),
};

/**
 * The shell toolchain commands run through, the same on every runner so that one workflow's
 * `toolchain` lines work on all three: `/bin/sh` on Linux and macOS, and on Windows the bash of
 * Git for Windows (what `shell: bash` runs on a hosted Windows runner): under ProgramFiles (or
 * ProgramW6432, ProgramFiles(x86)) `Git\bin\bash.exe`, else the first `bash.exe` on PATH that
 * is not WSL's launcher (in System32 or WindowsApps, which starts a Linux distribution, not a
 * shell for this machine). `cmd.exe` (ComSpec) only when Windows has no bash at all; then a
 * POSIX-syntax command fails and the InputError says which shell ran it.
 */
export function toolchainShell(host: ShellHost = NATIVE_SHELL_HOST): string {
  if (host.platform !== 'win32') return '/bin/sh';
  const p = host.path;
  const candidates: string[] = [];
  for (const name of ['ProgramFiles', 'ProgramW6432', 'ProgramFiles(x86)']) {
    const dir = host.env[name];
    if (dir !== undefined && dir !== '') candidates.push(p.join(dir, 'Git', 'bin', 'bash.exe'));
  }
  const pathVar = host.env['PATH'] ?? host.env['Path'] ?? '';
  for (const dir of pathVar.split(p.delimiter)) {
    if (dir === '' || /[\\/](system32|windowsapps)[\\/]?$/i.test(dir)) continue;
    candidates.push(p.join(dir, 'bash.exe'));
  }
  const found = candidates.find((c) => host.exists(c));
  return found ?? host.env['ComSpec'] ?? 'cmd.exe';
}

/** Runs each distinct command once (concurrently); components in byte order of command. */
export async function toolchainComponents(
  commands: readonly string[],
  cwd: string,
  timeoutMs = TOOLCHAIN_TIMEOUT_MS,
  host: ShellHost = NATIVE_SHELL_HOST,
): Promise<KeyComponent[]> {
  const wanted = sortBytes(
    new Set(commands.map((c) => c.trim()).filter((c) => c !== '' && !c.startsWith('#'))),
  );
  const shell = wanted.length > 0 ? toolchainShell(host) : '';
  const outputs = await Promise.allSettled(wanted.map((c) => runTool(c, cwd, timeoutMs, shell)));
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
function runTool(command: string, cwd: string, timeoutMs: number, shell: string): Promise<string> {
  return new Promise((resolve, reject) => {
    exec(
      command,
      {
        cwd,
        shell,
        encoding: 'utf8',
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
        windowsHide: true,
      },
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
            `the command '${command}' (run by ${shell}) ${what}${detail !== '' ? `: ${displayValue(detail, 300)}` : ''}`,
          ),
        );
      },
    );
  });
}
