/**
 * Issue 12 row 9: toolchain commands run through a POSIX shell on every runner, Git for
 * Windows' bash on Windows (what `shell: bash` runs there), never cmd.exe while a bash exists.
 */
import { describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { toolchainComponents, toolchainShell, type ShellHost } from '../../src/key/environment.js';

function windows(env: Record<string, string>, files: readonly string[]): ShellHost {
  const present = new Set(files.map((f) => f.toLowerCase()));
  return {
    platform: 'win32',
    env,
    path: path.win32,
    exists: (f) => present.has(f.toLowerCase()),
  };
}

const GIT_BASH = 'C:\\Program Files\\Git\\bin\\bash.exe';
const WINDOWS_ENV = {
  ProgramFiles: 'C:\\Program Files',
  ComSpec: 'C:\\Windows\\system32\\cmd.exe',
  PATH: 'C:\\Windows\\system32;C:\\Users\\me\\AppData\\Local\\Microsoft\\WindowsApps;C:\\tools',
};

describe('toolchainShell', () => {
  it('Windows: the bash of Git for Windows, as on a hosted runner', () => {
    expect(toolchainShell(windows(WINDOWS_ENV, [GIT_BASH]))).toBe(GIT_BASH);
  });

  it("Windows: a bash on PATH, never WSL's launcher in System32 or WindowsApps", () => {
    const host = windows(WINDOWS_ENV, [
      'C:\\Windows\\system32\\bash.exe',
      'C:\\Users\\me\\AppData\\Local\\Microsoft\\WindowsApps\\bash.exe',
      'C:\\tools\\bash.exe',
    ]);
    expect(toolchainShell(host)).toBe('C:\\tools\\bash.exe');
  });

  it('Windows without any bash: cmd.exe from ComSpec', () => {
    expect(toolchainShell(windows(WINDOWS_ENV, ['C:\\Windows\\system32\\bash.exe']))).toBe(
      WINDOWS_ENV.ComSpec,
    );
  });

  it.each<NodeJS.Platform>(['linux', 'darwin'])('%s: /bin/sh', (platform) => {
    expect(toolchainShell({ ...windows(WINDOWS_ENV, [GIT_BASH]), platform })).toBe('/bin/sh');
  });
});

describe('toolchain commands with Windows injected', () => {
  it('a POSIX-syntax command runs through the bash found, and its output is the component', async () => {
    // A "Git for Windows" whose bash.exe is this machine's bash: the command must reach bash
    // (BASH_VERSION is set), not the platform's default shell.
    const programFiles = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-programfiles-'));
    const gitBin = path.join(programFiles, 'Git', 'bin');
    await fs.mkdir(gitBin, { recursive: true });
    await fs.symlink('/bin/bash', path.join(gitBin, 'bash.exe'));
    const host: ShellHost = {
      platform: 'win32',
      env: { ProgramFiles: programFiles, ComSpec: 'cmd.exe' },
      path: path.posix,
      exists: (f) => f === path.join(gitBin, 'bash.exe'),
    };
    const command = 'test -n "$BASH_VERSION" && echo "answer $((6 * 7))" | sed s/answer/posix/';
    const [c] = await toolchainComponents([command], programFiles, 10_000, host);
    expect(c?.value).toBe('posix 42');
    await fs.rm(programFiles, { recursive: true });
  });
});
