/**
 * End to end: the bundled gc sub-action (dist/gc/index.js), run as the runner runs it, against
 * the loopback service's REST endpoints holding a few hundred caches (several packages,
 * platforms, branches, open and closed pull requests, and caches of other tools), and on a
 * damaged local store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { REPO } from '../../test-support/world.js';
import { LocalStore } from '../../src/store/index.js';
import {
  contentFor,
  readContent,
  requestFor,
  sameContent,
  writeContent,
} from '../../test-support/store/fixtures.js';

const DAY = 86_400_000;
const PACKAGES = ['app', 'lib', 'tool'];
const PLATFORMS = ['linux_x64', 'windows_x64', 'macos_arm64'];
const REFS = [
  'refs/heads/main',
  'refs/heads/dev',
  'refs/pull/7/merge',
  'refs/pull/8/merge',
  'refs/pull/9/merge',
];
const CLOSED_REFS = new Set(['refs/pull/8/merge', 'refs/pull/9/merge']);
const INPUTS = { 'max-size': '20KB', 'keep-versions': '1', ttl: 'content=7d' };

interface PlanTarget {
  target: string;
  entriesBefore: number;
  deletions: { handle: string; key: string; reason: string; ref?: string }[];
  kept: { key: string; wanted: string; keptBy: string }[];
}

let service: CacheService;
let root: string;
let initialIds: number[];

/** 5 builds of each package, platform and ref, 2 days apart; the older two unused for over 7 days. */
function seed(): void {
  const now = Date.now();
  let n = 0;
  for (const pkg of PACKAGES) {
    for (const platform of PLATFORMS) {
      for (const ref of REFS) {
        for (let v = 0; v < 5; v++) {
          const created = now - (10 - 2 * v) * DAY;
          const hash = (n++).toString(16).padStart(64, '0');
          service.seedEntry({
            key: `clyde-${pkg}-${platform}-release-${hash}`,
            version: 'v1',
            scope: ref,
            data: Buffer.alloc(200 + ((n * 37) % 1000)),
            createdAt: new Date(created),
            lastAccessedAt: new Date(created + DAY / 2),
          });
        }
      }
    }
  }
  for (let i = 0; i < 20; i++) {
    const created = now - (i % 4) * DAY;
    service.seedEntry({
      key: `node-modules-${i}`,
      version: 'v1',
      scope: i % 2 ? 'refs/heads/main' : 'refs/pull/8/merge',
      data: Buffer.alloc(500),
      createdAt: new Date(created),
      lastAccessedAt: new Date(created),
    });
  }
}

async function gc(withInputs: Record<string, string>): Promise<StepResult> {
  const workspace = path.join(root, `ws-${Math.random().toString(36).slice(2)}`);
  await fs.mkdir(workspace, { recursive: true });
  const job = new Job({
    workspace,
    repository: 'octo/demo',
    env: { GITHUB_API_URL: service.apiUrl },
  });
  const step = await job.uses(path.join(REPO, 'gc'), withInputs);
  await job.finish();
  return step;
}

function planOf(step: StepResult): PlanTarget {
  const plan = JSON.parse(step.outputs['plan'] ?? '{}') as { targets: PlanTarget[] };
  expect(plan.targets.map((t) => t.target)).toEqual(['remote']);
  return plan.targets[0]!;
}

function errors(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level !== 'notice').map((a) => a.message);
}

describe('gc sub-action against the runner caches', () => {
  let dryPlan: PlanTarget;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-gc-e2e-'));
    service = await startCacheService({ dataDir: path.join(root, 'service') });
    service.setPullRequests({ 7: 'open', 8: 'closed', 9: 'merged' });
    seed();
    initialIds = service.entries().map((e) => e.id);
  });
  afterAll(async () => {
    await service.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('holds a few hundred caches to start with', () => {
    expect(initialIds.length).toBe(PACKAGES.length * PLATFORMS.length * REFS.length * 5 + 20);
  });

  it('a dry run prints the plan and deletes nothing', async () => {
    const step = await gc({ ...INPUTS, token: service.restToken(), 'dry-run': 'true' });
    expect(step.exitCode).toBe(0);
    expect(errors(step)).toEqual([]);
    expect(step.outputs['deleted-count']).toBe('0');
    expect(service.entries().map((e) => e.id)).toEqual(initialIds);
    expect(service.requests().filter((r) => r.method === 'DELETE')).toEqual([]);

    dryPlan = planOf(step);
    const reasons = new Set(dryPlan.deletions.map((d) => d.reason));
    expect([...reasons].sort()).toEqual(['closed-pr', 'expired', 'size-budget', 'superseded']);
    for (const d of dryPlan.deletions) {
      expect(step.stdout).toContain(`would delete ${d.key} on ${d.ref}`);
    }
    expect(step.summary).toContain('(dry run: nothing deleted)');
    expect(step.summary).toMatch(/\| would delete: closed-pr \| \d+ \|/);
  });

  it('a real run deletes exactly the planned set, and the same plan', async () => {
    const step = await gc({ ...INPUTS, token: service.restToken() });
    expect(step.exitCode).toBe(0);
    expect(errors(step)).toEqual([]);
    const plan = planOf(step);
    const summary = (p: PlanTarget) => p.deletions.map((d) => [d.handle, d.reason]);
    expect(summary(plan)).toEqual(summary(dryPlan));
    expect(step.outputs['deleted-count']).toBe(String(plan.deletions.length));

    const deleted = new Set(plan.deletions.map((d) => Number(d.handle)));
    const left = service.entries();
    expect(left.map((e) => e.id)).toEqual(initialIds.filter((id) => !deleted.has(id)));
    expect(step.summary).toMatch(/\| deleted: superseded \| \d+ \|/);
    expect(step.summary).toMatch(/\| after \| \d+ \|/);

    // What the rules promise, checked against the service directly.
    const clyde = left.filter((e) => e.key.startsWith('clyde-'));
    expect(clyde.filter((e) => CLOSED_REFS.has(e.scope))).toEqual([]);
    expect(left.filter((e) => e.key.startsWith('node-modules-'))).toHaveLength(20);
    const perRefGroup = new Map<string, number>();
    for (const e of clyde) {
      const g = `${e.scope} ${e.key.split('-').slice(0, 4).join('-')}`;
      perRefGroup.set(g, (perRefGroup.get(g) ?? 0) + 1);
    }
    expect([...perRefGroup.values()].every((c) => c === 1)).toBe(true);
    // keep-versions 1: every package and platform still has an entry.
    const groups = new Set(clyde.map((e) => e.key.split('-').slice(0, 4).join('-')));
    expect(groups.size).toBe(PACKAGES.length * PLATFORMS.length);
  });

  it('a token that may not delete ends with the permission the workflow needs', async () => {
    service.seedEntry({
      key: `clyde-app-linux_x64-release-${'f'.repeat(64)}`,
      version: 'v1',
      scope: 'refs/pull/8/merge',
      data: Buffer.alloc(10),
    });
    const before = service.entries().length;
    const step = await gc({ ...INPUTS, token: service.restToken({ permission: 'read' }) });
    expect(step.exitCode).not.toBe(0);
    expect(errors(step).join('\n')).toMatch(/permissions: actions: write/);
    expect(service.entries()).toHaveLength(before);
  });
});

describe('gc sub-action on a local store', () => {
  it('verifies the store, repairs it and collects what killed saves left, but not on a dry run', async () => {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-gc-local-'));
    try {
      const storeDir = path.join(base, 'store');
      const store = await LocalStore.open(storeDir);
      for (const key of ['a', 'b']) {
        const dir = path.join(base, 'out', key);
        await writeContent(dir, contentFor(key));
        await store.save(requestFor(key, dir));
      }
      // Damage: a blob only b needs is gone. Garbage: a blob no entry uses, from a killed save.
      const own = async (key: string): Promise<Set<string>> =>
        new Set((await store.snapshot()).entries.find((e) => e.key === key)?.blobs ?? []);
      const aBlobs = await own('a');
      const lost = [...(await own('b'))].find((d) => !aBlobs.has(d)) as string;
      expect(lost).toMatch(/^[0-9a-f]{64}$/);
      await fs.rm(path.join(storeDir, 'blobs', lost.slice(0, 2), lost));
      const orphan = (n: string): string => path.join(storeDir, 'blobs', n.slice(0, 2), n);
      const old = 'ab'.repeat(32);
      const young = 'cd'.repeat(32);
      await fs.mkdir(path.dirname(orphan(old)), { recursive: true });
      await fs.writeFile(orphan(old), 'left by a killed save');
      // Everything so far was written an hour ago; then a save that may still be running.
      const hourAgo = new Date(Date.now() - 3_600_000);
      for (const e of await fs.readdir(path.join(storeDir, 'blobs'), { recursive: true })) {
        await fs.utimes(path.join(storeDir, 'blobs', e), hourAgo, hourAgo);
      }
      await fs.mkdir(path.dirname(orphan(young)), { recursive: true });
      await fs.writeFile(orphan(young), 'written by a save in flight');

      // What an earlier version left: an uncompressed copy for linked restores.
      const unpacked = path.join(storeDir, 'unpacked', 'ab');
      await fs.mkdir(unpacked, { recursive: true });
      await fs.writeFile(path.join(unpacked, `${'ab'.repeat(32)}.644`), 'a copy');

      const gc = async (dryRun: boolean): Promise<StepResult> => {
        const ws = await fs.mkdtemp(path.join(base, 'ws-'));
        const job = new Job({ workspace: ws });
        const step = await job.uses(path.join(REPO, 'gc'), {
          local: 'true',
          remote: 'false',
          'local-cache-dir': storeDir,
          'dry-run': String(dryRun),
        });
        await job.finish();
        expect(step.exitCode).toBe(0);
        expect(errors(step).filter((m) => !m.includes('problem'))).toEqual([]);
        return step;
      };

      const dry = await gc(true);
      expect(dry.summary).toMatch(
        /problem\(s\) found, left for a run that is not dry: blob \w+ is missing/,
      );
      expect(dry.summary).toMatch(
        /2 blob\(s\) and 0 entry directory\(ies\) no entry uses, left by the dry run/,
      );
      expect(
        (await LocalStore.open(storeDir).then((s) => s.list())).map((e) => e.key).sort(),
      ).toEqual(['a', 'b']);
      expect(existsSync(orphan(old))).toBe(true);
      expect(dry.summary).toMatch(
        /1 file\(s\) of an older store layout \(6 B\) left by the dry run/,
      );
      expect(existsSync(unpacked)).toBe(true);

      const real = await gc(false);
      expect(real.summary).toMatch(/problem\(s\) found, repaired/);
      expect(real.summary).toMatch(/removed \(blobs younger than ten minutes kept\)/);
      expect(real.summary).toMatch(
        /1 entries, \d+ blobs: [\d.]+ \w+ on disk for [\d.]+ \w+ of outputs/,
      );
      const after = await LocalStore.open(storeDir);
      expect((await after.list()).map((e) => e.key)).toEqual(['a']);
      expect(existsSync(orphan(old))).toBe(false);
      expect(existsSync(orphan(young))).toBe(true);
      expect(real.summary).toMatch(/1 file\(s\) of an older store layout \(6 B\) removed/);
      expect(existsSync(path.join(storeDir, 'unpacked'))).toBe(false);
      const report = await after.verify({ deep: true });
      expect(report.problems).toEqual([]);
      expect(report.orphanBlobs).toEqual([young]);
      const dest = path.join(base, 'check', 'out');
      await after.restore('a', [{ name: 'out', absPath: dest }]);
      expect(sameContent(await readContent(dest), contentFor('a'))).toBe(true);
    } finally {
      await fs.rm(base, { recursive: true, force: true });
    }
  });
});
