/** The phase stopwatch of src/report.ts: nested phases count only their own time. */
import { describe, expect, it } from '@jest/globals';
import { Timer } from '../src/report.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('Timer', () => {
  it('takes an inner phase off the phase around it, so the phases add up', async () => {
    const timer = new Timer();
    // What each phase really spent, measured here around the same waits (a loaded machine may
    // stretch any tick: the Timer must agree with these, whatever they are).
    const spent = { restore: 0, lookup: 0, download: 0 };
    const timed = async (phase: keyof typeof spent): Promise<void> => {
      const at = performance.now();
      await tick();
      spent[phase] += performance.now() - at;
    };
    const wall = performance.now();
    await timer.time('restore', async () => {
      await timed('restore');
      await timer.time('lookup', () => timed('lookup'));
      await timer.time('download', () => timed('download'));
      await timer.time('lookup', () => timed('lookup'));
    });
    const elapsed = performance.now() - wall;
    const t = timer.timings;
    expect(Object.keys(t).sort()).toEqual(['download', 'lookup', 'restore']);
    // Each phase holds its own time only: restore's one wait, not the waits nested in it.
    for (const phase of ['restore', 'lookup', 'download'] as const) {
      expect(Math.abs(t[phase]! - spent[phase])).toBeLessThan(3);
    }
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
