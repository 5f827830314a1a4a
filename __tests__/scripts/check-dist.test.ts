/**
 * The dist/ check of .github/workflows/ci.yml (scripts/check-dist.sh), on a clone of this
 * repository (issue 12 row 2): a native binding built elsewhere (other bytes, still loading)
 * passes, JavaScript that differs from the bundle fails, a binding that does not load fails.
 * And .gitattributes keeps text files LF in every checkout (prettier and the check expect LF).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../../test-support/world.js';

describe('the CI dist check', () => {
  let clone = '';
  beforeAll(async () => {
    clone = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-dist-check-')), 'repo');
    execFileSync('git', ['clone', '-q', '--no-hardlinks', REPO, clone]);
    // the clone holds HEAD; the script as it is now is what is tested
    await fs.copyFile(
      path.join(REPO, 'scripts', 'check-dist.sh'),
      path.join(clone, 'scripts', 'check-dist.sh'),
    );
  });
  afterAll(async () => {
    await fs.rm(path.dirname(clone), { recursive: true, force: true });
  });

  const check = () =>
    spawnSync('bash', ['scripts/check-dist.sh', '--no-bundle'], { cwd: clone, encoding: 'utf8' });
  const binding = () => path.join(clone, 'dist', 'gc', 'build', 'Release', 'binding.node');

  it('passes on the committed dist/', () => {
    expect(check().status).toBe(0);
  });

  it('passes when the native binding is another build (other bytes that load)', async () => {
    await fs.appendFile(binding(), Buffer.from('built on another machine'));
    const r = check();
    expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/bindings load/)]);
    execFileSync('git', ['checkout', '--', 'dist'], { cwd: clone });
  });

  it('fails when the JavaScript differs from the bundle', async () => {
    await fs.appendFile(path.join(clone, 'dist', 'gc', 'index.js'), '\n// edited\n');
    const r = check();
    expect([r.status, r.stdout]).toEqual([1, expect.stringMatching(/dist\/ differs/)]);
    execFileSync('git', ['checkout', '--', 'dist'], { cwd: clone });
  });

  it('fails when a binding does not load', async () => {
    await fs.writeFile(binding(), 'not an ELF file');
    const r = check();
    expect([r.status, r.stdout]).toEqual([1, expect.stringMatching(/does not load/)]);
    execFileSync('git', ['checkout', '--', 'dist'], { cwd: clone });
  });

  it('is what the workflow runs', async () => {
    const workflow = await fs.readFile(path.join(REPO, '.github', 'workflows', 'ci.yml'), 'utf8');
    expect(workflow).toMatch(/bash scripts\/check-dist\.sh/);
  });

  it('text files check out with LF whatever core.autocrlf says', () => {
    const attr = execFileSync('git', ['check-attr', 'eol', 'text', '--', 'src/inputs.ts'], {
      cwd: clone,
      encoding: 'utf8',
    });
    expect(attr).toMatch(/eol: lf/);
    const crlf = path.join(path.dirname(clone), 'crlf');
    execFileSync('git', ['-c', 'core.autocrlf=true', 'clone', '-q', REPO, crlf]);
    const text = execFileSync('git', ['-C', crlf, 'show', 'HEAD:README.md']).toString();
    return fs.readFile(path.join(crlf, 'README.md'), 'utf8').then((checkedOut) => {
      expect(checkedOut.includes('\r\n')).toBe(false);
      expect(checkedOut).toBe(text);
    });
  });
});

describe("dist/'s licenses", () => {
  it('name every production dependency, with its license text, in each entry', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(REPO, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const entry of ['restore', 'save', 'gc']) {
      const text = await fs.readFile(path.join(REPO, 'dist', entry, 'licenses.txt'), 'utf8');
      for (const name of Object.keys(pkg.dependencies)) {
        const version = (
          JSON.parse(
            await fs.readFile(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8'),
          ) as { version: string }
        ).version;
        expect(text).toContain(`${name}@${version}\n`);
      }
      // undici (MIT) with its text; yaml's ISC text
      expect(text).toMatch(/\nundici@[\d.]+\nMIT\nMIT License/);
      expect(text).toMatch(/\nyaml@[\d.]+\nISC\nCopyright/);
    }
  });
});
