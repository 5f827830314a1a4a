/**
 * The runner's proxy settings, end to end through dist/: with HTTPS_PROXY/HTTP_PROXY naming a
 * loopback proxy, the action's lookups and its download reach the cache service through it;
 * NO_PROXY sends a host direct; a proxy that closes its tunnels is one warning and a miss, after
 * a few attempts rather than a reconnecting loop.
 *
 * The service is named `cache.clyde.test` / `blob.clyde.test`, which only the proxy resolves (a
 * loopback name would never be proxied: @actions/http-client, whose rules the action follows,
 * bypasses `localhost` and `127.*`); `0.0.0.0` reaches it directly, for NO_PROXY.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StepResult } from '../../test-support/runner.js';
import { startProxy, type LoopbackProxy } from '../../test-support/proxy.js';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

function warnings(r: StepResult): string {
  return r.annotations
    .filter((a) => a.level === 'warning')
    .map((a) => a.message)
    .join('\n');
}

let world: World;
let proxy: LoopbackProxy;
let port: string;

beforeAll(async () => {
  world = await createWorld();
  proxy = await startProxy();
  port = new URL(world.service.url).port;
});
afterAll(async () => {
  await proxy.close();
  await world.close();
});
beforeEach(async () => {
  world.service.reset();
  world.service.setDownloadOrigin(undefined);
  proxy.setMode('forward');
  proxy.clear();
  await fs.rm(world.localStore, { recursive: true, force: true });
  await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
});

/** The runner's environment: the service under a name only the proxy resolves. */
function behindProxy(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ACTIONS_RESULTS_URL: `http://cache.clyde.test:${port}/`,
    ...proxy.env(),
    ...extra,
  };
}

/** A fresh runner: no local store, no outputs. */
async function freshRunner(): Promise<void> {
  await fs.rm(world.localStore, { recursive: true, force: true });
  await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
}

describe('behind a proxy', () => {
  it('lookups and the download go through HTTPS_PROXY/HTTP_PROXY', async () => {
    world.service.setDownloadOrigin(`http://blob.clyde.test:${port}`);
    const env = behindProxy();
    const first = await runDemoJob(world, { env });
    expect(warnings(first.main)).toBe('');
    expect(warnings(first.posts[0]!)).toBe('');
    const [entry] = world.service.entries().filter((e) => e.finalized);
    expect(entry).toBeDefined();

    await freshRunner();
    proxy.clear();
    const second = await runDemoJob(world, { env });
    expect(warnings(second.main)).toBe('');
    expect(second.main.outputs['tier']).toBe('remote');
    expect(second.main.outputs['cache-hit']).toBe('true');
    expect(second.built).toBe(false);
    // The lookup, and the whole archive, came through the proxy.
    expect(proxy.handledFor('cache.clyde.test').length).toBeGreaterThan(0);
    const download = proxy.handledFor('blob.clyde.test');
    expect(download.length).toBeGreaterThan(0);
    expect(download.reduce((n, r) => n + r.bytesIn, 0)).toBeGreaterThanOrEqual(entry!.sizeBytes);
  });

  it('NO_PROXY sends its hosts direct, the others through the proxy', async () => {
    // Downloads on 0.0.0.0, which NO_PROXY names (host:port form); lookups through the proxy.
    world.service.setDownloadOrigin(`http://0.0.0.0:${port}`);
    const env = behindProxy({ NO_PROXY: `.example.com,0.0.0.0:${port}` });
    await runDemoJob(world, { env });
    expect(world.service.entries().filter((e) => e.finalized)).toHaveLength(1);

    await freshRunner();
    proxy.clear();
    const second = await runDemoJob(world, { env });
    expect(warnings(second.main)).toBe('');
    expect(second.main.outputs['tier']).toBe('remote');
    expect(proxy.handledFor('cache.clyde.test').length).toBeGreaterThan(0);
    expect(proxy.handledFor('0.0.0.0')).toEqual([]);
    // And the download really happened, direct.
    expect(
      world.service.requests().some((r) => r.method === 'GET' && [200, 206].includes(r.status)),
    ).toBe(true);
  });

  it('a proxy that closes its tunnels: one warning and a miss after a few attempts', async () => {
    proxy.setMode('close');
    const run = await runDemoJob(world, {
      env: behindProxy(),
      with: { save: 'never', 'remote-timeout': '20s' },
    });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(run.built).toBe(true);
    const warned = run.main.annotations.filter((a) => a.level === 'warning');
    expect(warned).toHaveLength(1);
    expect(warned[0]!.message).toMatch(
      new RegExp(
        `lookup failed: .*the proxy ${proxy.url} closed the tunnel to cache\\.clyde\\.test`,
      ),
    );
    // The lookup's attempts (it retries twice), not thousands of reconnections.
    expect(proxy.handled().length).toBeLessThanOrEqual(3);
  });
});
