/**
 * Long transfers and where the time went, end to end through dist/: a remote restore that lasts
 * longer than the progress interval (5 s) logs progress lines with bytes, total and rate, and
 * both job summaries show the time of each phase.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createWorld, runDemoJob, type World } from '../../test-support/world.js';

let world: World;
beforeAll(async () => {
  world = await createWorld();
});
afterAll(async () => {
  await world.close();
});

/** The phase names of a summary's time table, in order. */
function phases(summary: string): string[] {
  const m = /<table><tr><th>Phase<\/th>(.*?)<\/tr><tr><td>Time<\/td>(.*?)<\/tr><\/table>/.exec(
    summary,
  );
  if (!m) return [];
  const names = [...(m[1] ?? '').matchAll(/<th>(.*?)<\/th>/g)].map((x) => x[1] ?? '');
  const times = [...(m[2] ?? '').matchAll(/<td>(.*?)<\/td>/g)].map((x) => x[1] ?? '');
  expect(times).toHaveLength(names.length);
  for (const t of times) expect(t).toMatch(/^\d+\.\d\d s$/);
  return names;
}

describe('progress and phase times', () => {
  it('a slow remote restore logs progress; the summaries show each phase', async () => {
    const first = await runDemoJob(world);
    const post = first.posts[0]!;
    // Post takes the key from main's state: it computes none.
    expect(phases(post.summary)).toEqual(
      expect.arrayContaining(['Save local', 'Lookup', 'Upload', 'Total']),
    );
    const [entry] = world.service.entries().filter((e) => e.finalized);
    expect(entry).toBeDefined();

    // A fresh runner, and a download that takes about 7 s: 70 pieces, one every 100 ms.
    await fs.rm(world.localStore, { recursive: true, force: true });
    await fs.rm(path.join(world.workspace, 'out'), { recursive: true, force: true });
    const piece = Math.ceil(entry!.sizeBytes / 70);
    world.service.setFaults({ download: { trickle: { bytes: piece, everyMs: 100 } } });
    const second = await runDemoJob(world, { with: { save: 'never' } });
    expect(second.main.outputs['tier']).toBe('remote');

    const lines = second.main.stdout
      .split('\n')
      .filter((l) => l.startsWith('Runner cache: downloading '));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const l of lines) {
      expect(l).toMatch(
        /^Runner cache: downloading clyde-demo-\S+: [\d.]+ (B|KiB|MiB) of [\d.]+ (B|KiB|MiB) \([\d.]+%\), [\d.]+ (B|KiB|MiB)\/s$/,
      );
    }
    expect(lines.at(-1)).toMatch(/\(100\.0%\)/);
    expect(phases(second.main.summary)).toEqual(
      expect.arrayContaining([
        'Key',
        'Lookup',
        'Download',
        'Restore from the download',
        'Import',
        'Restore',
        'Total',
      ]),
    );
  });
});
