import { describe, it, expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadCodec } from '../../src/store/codec.js';

describe('loadCodec default', () => {
  it('picks zstd-napi where its binary loads (it is built here)', async () => {
    delete process.env.CLYDE_ZSTD_BACKEND;
    const c = await loadCodec();
    expect(c.name).toBe('zstd-napi');
    const s = Buffer.from('round trip');
    expect(c.decompress(c.compress(s), s.length).toString()).toBe('round trip');
  });

  it('falls back to node:zlib when zstd-napi will not load, and =native then fails', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-codec-'));
    try {
      // A resolve hook that makes zstd-napi unloadable, as on a musl or old-glibc runner.
      const hook = path.join(dir, 'hook.mjs');
      await fs.writeFile(
        hook,
        `export async function resolve(s, c, next) {
           if (s.startsWith('zstd-napi')) throw new Error('no binary here');
           return next(s, c);
         }\n`,
      );
      const reg = path.join(dir, 'register.mjs');
      await fs.writeFile(
        reg,
        `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`,
      );
      const codecUrl = new URL('../../src/store/codec.js', import.meta.url).href;
      const script = `
        const m = await import(${JSON.stringify(codecUrl)});
        const c = await m.loadCodec();
        const s = Buffer.from('fallback works');
        const ok = c.decompress(c.compress(s), s.length).equals(s);
        const native = await m.createCodec('native').then(() => 'loaded', (e) => e.name);
        console.log(JSON.stringify({ name: c.name, ok, native }));`;
      const run = (env: NodeJS.ProcessEnv): unknown => {
        const r = spawnSync(
          process.execPath,
          ['--import', reg, '--input-type=module', '-e', script],
          {
            env: { ...process.env, ...env },
            encoding: 'utf8',
            cwd: path.dirname(fileURLToPath(import.meta.url)),
          },
        );
        return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null');
      };
      expect(run({ CLYDE_ZSTD_BACKEND: '' })).toEqual({
        name: 'node:zlib',
        ok: true,
        native: 'StoreError',
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
