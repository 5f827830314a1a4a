/**
 * GC of the bucket tier through dist/gc (issue 15): the policy deletes entries, the sweep
 * deletes unreferenced blobs past the grace period, a dry run deletes nothing, and a save in
 * flight on another process while gc runs loses nothing it needs: its entry, committed after
 * the gc, restores byte for byte on a fresh runner.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startBucketServer, type BucketServer } from '../../test-support/bucket/index.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { git, REPO } from '../../test-support/world.js';

const FILES = 20;
const FILE_BYTES = 96 * 1024;
const DAY = 24 * 60 * 60_000;

let server: BucketServer;
let root: string;
let checkout: string;
let runners = 0;

beforeAll(async () => {
  server = await startBucketServer();
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-bucket-gc-'));
  checkout = path.join(root, 'origin');
  await fs.mkdir(checkout);
  await fs.writeFile(path.join(checkout, 'main.c'), 'int main(void) { return 0; }\n');
  await fs.writeFile(path.join(checkout, '.gitignore'), 'out/\n');
  git(checkout, 'init', '-q');
  git(checkout, 'add', '-A');
  git(checkout, 'commit', '-q', '-m', 'project');
});

afterAll(async () => {
  await server?.close();
  await fs.rm(root, { recursive: true, force: true });
});

async function newRunner(source: string): Promise<{ workspace: string; store: string }> {
  const dir = path.join(root, `runner-${++runners}`);
  await fs.mkdir(dir);
  git(dir, 'clone', '-q', checkout, 'ws');
  await fs.writeFile(path.join(dir, 'ws', 'main.c'), source);
  return { workspace: path.join(dir, 'ws'), store: path.join(dir, 'store') };
}

const cacheInputs = (store: string): Record<string, string> => ({
  path: 'out',
  name: 'fleet',
  'local-cache-dir': store,
  remote: 'false',
  ...server.inputs(),
});

/** A job that restores, "builds" `files` unless an exact hit, and saves; posts run by `post`. */
async function startJob(
  source: string,
  files: readonly Buffer[],
): Promise<{ main: StepResult; workspace: string; post: () => Promise<StepResult> }> {
  const r = await newRunner(source);
  const j = new Job({ workspace: r.workspace, env: server.env() });
  const main = await j.uses(REPO, cacheInputs(r.store), 'cache');
  await j.run('build', async () => {
    if (main.outputs['cache-hit'] === 'true') return;
    await fs.mkdir(path.join(r.workspace, 'out'), { recursive: true });
    await Promise.all(
      files.map((b, i) => fs.writeFile(path.join(r.workspace, 'out', `f-${i}.o`), b)),
    );
  });
  return { main, workspace: r.workspace, post: async () => (await j.finish())[0] as StepResult };
}

async function gc(withInputs: Record<string, string>): Promise<StepResult> {
  const j = new Job({ workspace: root, env: server.env() });
  const r = await j.uses(path.join(REPO, 'gc'), {
    remote: 'false',
    ...server.inputs(),
    ...withInputs,
  });
  await j.finish();
  return r;
}

describe('gc of the bucket', () => {
  it('dry run deletes nothing; gc with a save in flight keeps everything the save needs', async () => {
    const gen1 = Array.from({ length: FILES }, () => randomBytes(FILE_BYTES));
    const a = await startJob('int main(void) { return 1; }\n', gen1);
    expect((await a.post()).exitCode).toBe(0);
    // An orphan: a blob no entry lists (a save that died before its entry).
    const orphanDigest = 'ab'.repeat(32);
    await putOrphan(orphanDigest);
    await server.age(2 * DAY); // a's entry and blobs, and the orphan, saved two days ago

    // A save that starts from a's entry, changes one file, and is held before its entry lands.
    const gen2 = gen1.map((b, i) => (i === 0 ? randomBytes(FILE_BYTES) : b));
    const s = await startJob('int main(void) { return 2; }\n', gen2);
    expect(s.main.outputs['tier']).toBe('bucket');
    server.setFaults([{ match: /^PUT \/clyde-fleet\/ci\/entries\//, hold: true }]);
    const saving = s.post();
    await server.held(); // its new blob is uploaded, its entry not yet

    const before = await server.objects();
    const dry = await gc({ 'dry-run': 'true', 'max-age': '1d', 'keep-versions': '0' });
    expect(dry.exitCode).toBe(0);
    expect(await server.objects()).toEqual(before);
    expect(dry.outputs['deleted-bytes']).toBe('0');
    expect(dry.stdout).toMatch(/\[dry run\] Bucket s3:\/\/clyde-fleet\/ci\/: would delete/);

    const run = await gc({ 'max-age': '1d', 'keep-versions': '0' });
    expect(run.exitCode).toBe(0);
    expect(run.annotations.filter((x) => x.level === 'warning')).toEqual([]);
    expect(run.outputs['deleted-count']).toBe('1'); // a's entry
    expect(run.outputs['deleted-bytes']).toBe('1000'); // the orphan: a's blobs go next run
    const after = await server.objects();
    // a's entry went (max-age); the orphan went; every blob a's entry listed stayed.
    expect([...after.keys()].filter((k) => k.includes('/entries/'))).toEqual([]);
    expect(after.has(`ci/blobs/ab/${orphanDigest}`)).toBe(false);
    const blobsBefore = [...before.keys()].filter(
      (k) => k.includes('/blobs/') && !k.endsWith(orphanDigest),
    );
    for (const k of blobsBefore) expect(after.has(k)).toBe(true);

    server.release();
    const post = await saving;
    expect(post.exitCode).toBe(0);
    expect(post.annotations.filter((x) => x.level === 'warning')).toEqual([]);

    // The next gc (later: nothing in flight) sweeps what only a's entry used, not s's blobs.
    const second = await gc({ 'max-age': '3d', 'keep-versions': '0' });
    expect(second.exitCode).toBe(0);
    const blobsAfter = [...(await server.objects()).keys()].filter((k) => k.includes('/blobs/'));
    expect(blobsAfter).toHaveLength(blobsBefore.length - 1); // file 0 of a's outputs
    const r = await startJob('int main(void) { return 2; }\n', []);
    expect(r.main.outputs['cache-hit']).toBe('true');
    expect(r.main.outputs['tier']).toBe('bucket');
    const got = await Promise.all(
      gen2.map((_, i) => fs.readFile(path.join(r.workspace, 'out', `f-${i}.o`))),
    );
    got.forEach((b, i) => expect(b.equals(gen2[i] as Buffer)).toBe(true));
    await r.post();
  });

  it('refuses a grace period too short for saves in flight, naming the input', async () => {
    const run = await gc({ 'bucket-grace': '10m' });
    expect(run.exitCode).not.toBe(0);
    expect(run.annotations.map((a) => a.message).join('\n')).toMatch(
      /Input 'bucket-grace'.*at least 7h/,
    );
  });
});

/** Writes a blob object no entry lists, as a save that died after its blobs would leave. */
async function putOrphan(digest: string): Promise<void> {
  const { openBucketClient } = await import('../../src/remote/bucket-client.js');
  const client = openBucketClient({
    name: 'clyde-fleet',
    prefix: 'ci/',
    endpoint: server.endpoint,
    region: 'us-east-1',
    pathStyle: true,
  });
  process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
  await client.put(`ci/blobs/ab/${digest}`, randomBytes(1000), AbortSignal.timeout(10_000));
}
