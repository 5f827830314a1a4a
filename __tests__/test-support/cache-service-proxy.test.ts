/**
 * The loopback service's Azure-named download origin (setDownloadOrigin, proxyEnv): a separate
 * Node process, as an action step is, reaches the blob through the service acting as its proxy,
 * with Node's own fetch (a CONNECT tunnel) as this action's download uses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { nodeBinary } from '../../test-support/runner.js';

const run = promisify(execFile);
const LOOKUP = '/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL';

describe('cache service: downloads on an Azure-named origin', () => {
  let service: CacheService;
  const data = randomBytes(100_000);

  beforeAll(async () => {
    service = await startCacheService();
    service.seedEntry({ key: 'k', version: 'v', data });
    service.setDownloadOrigin('http://clydebench.blob.core.windows.net');
  });
  afterAll(async () => {
    await service.close();
  });

  it("hands out the origin's URLs and serves them to fetch through proxyEnv()", async () => {
    const res = await fetch(new URL(LOOKUP, service.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${service.token()}` },
      body: JSON.stringify({ key: 'k', version: 'v' }),
    });
    const url = ((await res.json()) as { signed_download_url: string }).signed_download_url;
    expect(new URL(url).host).toBe('clydebench.blob.core.windows.net');
    const script =
      'const r = await fetch(process.argv[1]); const b = Buffer.from(await r.arrayBuffer());' +
      "console.log(r.status, require('node:crypto').createHash('sha256').update(b).digest('hex'))";
    const { stdout } = await run(
      nodeBinary(),
      ['--input-type=commonjs', '-e', `(async () => { ${script} })()`, url],
      {
        env: { PATH: process.env.PATH ?? '', ...service.proxyEnv() },
        timeout: 60_000,
      },
    );
    expect(stdout.trim()).toBe(`200 ${createHash('sha256').update(data).digest('hex')}`);
  });
});
