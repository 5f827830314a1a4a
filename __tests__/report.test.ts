/** The phase stopwatch of src/report.ts: nested phases count only their own time. */
import { describe, expect, it } from '@jest/globals';
import { Timer } from '../src/report.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('Timer', () => {
  it('takes an inner phase off the phase around it, so the phases add up', async () => {
    const timer = new Timer();
    const wall = performance.now();
    await timer.time('restore', async () => {
      await tick();
      await timer.time('lookup', tick);
      await timer.time('download', async () => {
        await tick();
      });
      await timer.time('lookup', tick);
    });
    const elapsed = performance.now() - wall;
    const t = timer.timings;
    expect(Object.keys(t).sort()).toEqual(['download', 'lookup', 'restore']);
    // Two lookups of one tick each against one tick of restore's own: lookup holds more.
    expect(t['lookup']!).toBeGreaterThan(t['restore']!);
    const sum = Object.values(t).reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThanOrEqual(elapsed + 1);
    expect(sum).toBeGreaterThan(elapsed - 5);
  });

  it('phases side by side each count their own time', async () => {
    const timer = new Timer();
    await timer.time('upload', () =>
      Promise.all([timer.time('local', tick), timer.time('export', tick)]),
    );
    const t = timer.timings;
    expect(t['local']!).toBeGreaterThan(0);
    expect(t['export']!).toBeGreaterThan(0);
    expect(t['upload']!).toBeGreaterThanOrEqual(0);
  });
});
