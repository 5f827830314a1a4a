/**
 * The bucket tier end to end (issue 15): dist/ run as the runner runs it, the real
 * @aws-sdk/client-s3 against a real S3-compatible server on loopback (test-support/bucket:
 * s3rver behind a fault proxy). Three runners with separate, empty local stores share one
 * bucket; a 1%-changed save uploads only what changed; concurrent saves of one key both
 * succeed; a pull request's job reads its base branch's entries and writes only its own scope;
 * bad configuration fails the step naming the input, and an unreachable bucket or a poisoned
 * blob is a warning and a miss (the poisoned entry found before anything is written).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBucketClient } from '../../src/remote/bucket-client.js';
import { decodeEntry } from '../../src/remote/bucket.js';
import { LocalStore } from '../../src/store/index.js';
import {
  startBucketServer,
  TEST_BUCKET,
  type BucketServer,
} from '../../test-support/bucket/index.js';
import { Job, type StepResult } from '../../test-support/runner.js';
import { git, REPO } from '../../test-support/world.js';

const FILES = 100;
const FILE_BYTES = 128 * 1024;

let server: BucketServer;
let root: string;
/** The build's outputs (random, so incompressible): file i of generation g. */
let outputs: Buffer[];
let checkout: string;
let runners = 0;

beforeAll(async () => {
  server = await startBucketServer();
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-bucket-e2e-'));
  checkout = path.join(root, 'origin');
  await fs.mkdir(checkout);
  await fs.writeFile(path.join(checkout, 'main.c'), 'int main(void) { return 0; }\n');
  await fs.writeFile(path.join(checkout, '.gitignore'), 'out/\n');
  git(checkout, 'init', '-q');
  git(checkout, 'add', '-A');
  git(checkout, 'commit', '-q', '-m', 'project');
  outputs = Array.from({ length: FILES }, () => randomBytes(FILE_BYTES));
});

afterAll(async () => {
  await server?.close();
  await fs.rm(root, { recursive: true, force: true });
});

beforeEach(() => server.reset());

interface Runner {
  readonly workspace: string;
  readonly store: string;
}

/** A fresh machine: its own checkout (a clone) and an empty local store. */
async function newRunner(): Promise<Runner> {
  const dir = path.join(root, `runner-${++runners}`);
  await fs.mkdir(dir);
  git(dir, 'clone', '-q', checkout, 'ws');
  return { workspace: path.join(dir, 'ws'), store: path.join(dir, 'store') };
}

interface JobResult {
  readonly main: StepResult;
  readonly post: StepResult;
  readonly built: boolean;
}

/** One job: the action, a "build" writing `files` into out/ unless an exact hit, then post. */
async function job(
  r: Runner,
  files: readonly Buffer[],
  opts: {
    ref?: string;
    env?: Record<string, string>;
    with?: Record<string, string>;
    beforePost?: () => Promise<void>;
  } = {},
): Promise<JobResult> {
  const j = new Job({
    workspace: r.workspace,
    env: { ...server.env(), ...(opts.env ?? {}) },
    ...(opts.ref ? { ref: opts.ref } : {}),
  });
  const main = await j.uses(
    REPO,
    {
      path: 'out',
      name: 'fleet',
      'local-cache-dir': r.store,
      remote: 'false',
      ...server.inputs(),
      ...(opts.with ?? {}),
    },
    'cache',
  );
  let built = false;
  await j.run('build', async () => {
    if (main.outputs['cache-hit'] === 'true') return;
    await fs.mkdir(path.join(r.workspace, 'out'), { recursive: true });
    await Promise.all(
      files.map((b, i) => fs.writeFile(path.join(r.workspace, 'out', `part-${i}.o`), b)),
    );
    built = true;
  });
  await opts.beforePost?.();
  const posts = await j.finish();
  return { main, post: posts[0] as StepResult, built };
}

async function restoredFiles(r: Runner): Promise<Buffer[]> {
  return Promise.all(
    outputs.map((_, i) => fs.readFile(path.join(r.workspace, 'out', `part-${i}.o`))),
  );
}

function warnings(s: StepResult): string[] {
  return s.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
}

async function changeSource(r: Runner, text: string): Promise<void> {
  await fs.writeFile(path.join(r.workspace, 'main.c'), text);
}

describe('three runners share one bucket', () => {
  it('runner 1 saves; runners 2 and 3, with empty stores, restore byte-identical outputs', async () => {
    const r1 = await newRunner();
    const first = await job(r1, outputs);
    expect(first.main.exitCode).toBe(0);
    expect(first.main.outputs['tier']).toBe('none');
    expect(first.post.exitCode).toBe(0);
    expect(warnings(first.post)).toEqual([]);
    expect(first.post.summary).toMatch(/saved \(\d+ of \d+ blobs uploaded/);
    const objects = await server.objects();
    expect([...objects.keys()].some((k) => k.startsWith('ci/entries/refs%2Fheads%2Fmain/'))).toBe(
      true,
    );

    for (const r of [await newRunner(), await newRunner()]) {
      const run = await job(r, []);
      expect(run.main.exitCode).toBe(0);
      expect(warnings(run.main)).toEqual([]);
      expect(run.main.outputs['tier']).toBe('bucket');
      expect(run.main.outputs['cache-hit']).toBe('true');
      expect(run.built).toBe(false);
      const got = await restoredFiles(r);
      got.forEach((b, i) => expect(b.equals(outputs[i] as Buffer)).toBe(true));
      // The hit was written through to the runner's own local store.
      expect((await fs.readdir(r.store)).includes('fleet')).toBe(true);
    }
  });

  it('a 1%-changed save uploads at most twice the changed bytes', async () => {
    const r1 = await newRunner();
    await job(r1, outputs);
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 1; }\n');
    const changed = outputs.map((b, i) => (i === 7 ? randomBytes(FILE_BYTES) : b));
    server.reset();
    const before = await server.objects();
    const run = await job(r2, changed);
    expect(run.main.outputs['tier']).toBe('bucket');
    expect(run.main.outputs['hit-kind']).toBe('fallback');
    expect(run.post.exitCode).toBe(0);
    expect(warnings(run.post)).toEqual([]);
    const after = await server.objects();
    const added = [...after].filter(([k]) => !before.has(k));
    const addedBytes = added.reduce((a, [, n]) => a + n, 0);
    // One new blob and the new entry; and on the wire no more than that.
    expect(added.filter(([k]) => k.includes('/blobs/'))).toHaveLength(1);
    expect(addedBytes).toBeLessThanOrEqual(2 * FILE_BYTES);
    expect(server.uploadedBytes()).toBeLessThanOrEqual(2 * FILE_BYTES);

    // A third runner restores the changed outputs byte for byte.
    const r3 = await newRunner();
    await changeSource(r3, 'int main(void) { return 1; }\n');
    const third = await job(r3, []);
    expect(third.main.outputs['cache-hit']).toBe('true');
    expect(third.main.outputs['tier']).toBe('bucket');
    const got = await Promise.all(
      changed.map((_, i) => fs.readFile(path.join(r3.workspace, 'out', `part-${i}.o`))),
    );
    got.forEach((b, i) => expect(b.equals(changed[i] as Buffer)).toBe(true));
  });

  it('a runner that keeps its store downloads only the blobs it lacks', async () => {
    const r1 = await newRunner();
    await changeSource(r1, 'int main(void) { return 6; }\n');
    await job(r1, outputs);
    // Another runner saves a version with one file changed.
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 7; }\n');
    const changed = outputs.map((b, i) => (i === 42 ? randomBytes(FILE_BYTES) : b));
    await job(r2, changed, { with: { 'restore-keys': 'none' } });
    // Runner 1, its store kept, now builds that version: an exact hit in the bucket.
    await fs.rm(path.join(r1.workspace, 'out'), { recursive: true, force: true });
    await changeSource(r1, 'int main(void) { return 7; }\n');
    server.reset();
    const run = await job(r1, []);
    expect(run.main.outputs['tier']).toBe('bucket');
    expect(run.main.outputs['cache-hit']).toBe('true');
    const blobGets = server.requests().filter((l) => /^GET .*\/blobs\//.test(l));
    expect(blobGets).toHaveLength(1);
    const got = await Promise.all(
      changed.map((_, i) => fs.readFile(path.join(r1.workspace, 'out', `part-${i}.o`))),
    );
    got.forEach((b, i) => expect(b.equals(changed[i] as Buffer)).toBe(true));
  });

  it('two runners saving the same key at once both succeed, and the entry is whole', async () => {
    const [a, b] = [await newRunner(), await newRunner()];
    const text = 'int main(void) { return 2; }\n';
    await changeSource(a, text);
    await changeSource(b, text);
    const files = outputs.map((o, i) => (i < 3 ? randomBytes(FILE_BYTES) : o));
    const [ra, rb] = await Promise.all([
      job(a, files, { with: { 'restore-keys': 'none' } }),
      job(b, files, { with: { 'restore-keys': 'none' } }),
    ]);
    for (const r of [ra, rb]) {
      expect(r.post.exitCode).toBe(0);
      expect(warnings(r.post)).toEqual([]);
    }
    const c = await newRunner();
    await changeSource(c, text);
    const rc = await job(c, []);
    expect(rc.main.outputs['cache-hit']).toBe('true');
    expect(rc.main.outputs['tier']).toBe('bucket');
    const got = await Promise.all(
      files.map((_, i) => fs.readFile(path.join(c.workspace, 'out', `part-${i}.o`))),
    );
    got.forEach((buf, i) => expect(buf.equals(files[i] as Buffer)).toBe(true));
  });

  it("a pull request's job reads its base branch's entries and writes only its own scope", async () => {
    const main = await newRunner();
    await job(main, outputs);
    const pr = await newRunner();
    await changeSource(pr, 'int main(void) { return 3; }\n');
    const prFiles = outputs.map((o, i) => (i === 0 ? randomBytes(FILE_BYTES) : o));
    const before = await server.objects('ci/entries/refs%2Fheads%2Fmain/');
    const run = await job(pr, prFiles, {
      ref: 'refs/pull/7/merge',
      env: {
        GITHUB_BASE_REF: 'main',
        GITHUB_HEAD_REF: 'feature',
        GITHUB_EVENT_NAME: 'pull_request',
      },
    });
    expect(run.main.outputs['tier']).toBe('bucket'); // the base branch's entry, as a fallback
    expect(run.main.outputs['hit-kind']).toBe('fallback');
    expect(run.post.exitCode).toBe(0);
    // The base branch's scope is as it was; the entry went to the pull request's scope.
    expect(await server.objects('ci/entries/refs%2Fheads%2Fmain/')).toEqual(before);
    expect((await server.objects('ci/entries/refs%2Fpull%2F7%2Fmerge/')).size).toBe(1);
    // A job on main with the pull request's sources does not see its entry.
    const m2 = await newRunner();
    await changeSource(m2, 'int main(void) { return 3; }\n');
    const onMain = await job(m2, prFiles, { with: { save: 'never' } });
    expect(onMain.main.outputs['cache-hit']).toBe('false');
  });
});

describe('faults and bad configuration', () => {
  it('a bucket answering 503 is a warning and a miss; the build runs and the step succeeds', async () => {
    const r1 = await newRunner();
    await changeSource(r1, 'int main(void) { return 4; }\n');
    await job(r1, outputs);
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 4; }\n');
    server.setFaults([{ status: 503, code: 'SlowDown' }]);
    const run = await job(r2, outputs, { with: { save: 'never' } });
    expect(run.main.exitCode).toBe(0);
    expect(run.main.outputs['tier']).toBe('none');
    expect(run.built).toBe(true);
    expect(warnings(run.main).join('\n')).toMatch(/Bucket s3:\/\/clyde-fleet\/ci\/: lookup failed/);
  });

  it('a poisoned blob is found before anything is written: a warning and a miss', async () => {
    const r1 = await newRunner();
    await changeSource(r1, 'int main(void) { return 9; }\n');
    const files = outputs.map(() => randomBytes(FILE_BYTES));
    const scope = 'ci/entries/refs%2Fheads%2Fmain/';
    const before = await server.objects(scope);
    await job(r1, files);
    const [entryKey] = [...(await server.objects(scope)).keys()].filter((k) => !before.has(k));
    // One of its blobs, changed in the bucket (its name and length kept).
    Object.assign(process.env, server.env());
    const client = openBucketClient({
      name: TEST_BUCKET,
      prefix: 'ci/',
      endpoint: server.endpoint,
      region: 'us-east-1',
      pathStyle: true,
    });
    const read = async (key: string): Promise<Buffer> => {
      const got = await client.get(key, AbortSignal.timeout(30_000));
      const chunks: Buffer[] = [];
      for await (const c of got?.body ?? []) chunks.push(Buffer.from(c));
      return Buffer.concat(chunks);
    };
    const digest = decodeEntry(await read(entryKey as string)).blobs[0]?.digest as string;
    const blobKey = `ci/blobs/${digest.slice(0, 2)}/${digest}`;
    const poisoned = await read(blobKey);
    poisoned.writeUInt8(poisoned.readUInt8(poisoned.length - 10) ^ 0xff, poisoned.length - 10);
    await client.put(blobKey, poisoned, AbortSignal.timeout(30_000));

    // A runner with an empty store, and an out/ of its own: the exact hit is refused whole.
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 9; }\n');
    await fs.mkdir(path.join(r2.workspace, 'out'));
    await fs.writeFile(path.join(r2.workspace, 'out', 'keep.txt'), 'keep');
    const j = new Job({ workspace: r2.workspace, env: server.env() });
    const main = await j.uses(
      REPO,
      {
        path: 'out',
        name: 'fleet',
        'local-cache-dir': r2.store,
        remote: 'false',
        'restore-keys': 'none',
        save: 'never',
        ...server.inputs(),
      },
      'cache',
    );
    expect(main.exitCode).toBe(0);
    expect(main.outputs['cache-hit']).toBe('false');
    expect(main.outputs['tier']).toBe('none');
    expect(warnings(main).join('\n')).toMatch(/Bucket entry .* could not be restored: .*digest/);
    // Nothing of the entry reached the workspace or the runner's store.
    expect(await fs.readdir(path.join(r2.workspace, 'out'))).toEqual(['keep.txt']);
    expect((await fs.readdir(r2.workspace)).filter((n) => n.startsWith('.clyde'))).toEqual([]);
    expect(await (await LocalStore.open(r2.store)).list()).toEqual([]);
    await j.finish();
  });

  it('a connection dropped in the middle of an upload is retried; the entry is whole', async () => {
    const r1 = await newRunner();
    await changeSource(r1, 'int main(void) { return 5; }\n');
    const files = outputs.map(() => randomBytes(FILE_BYTES));
    const drop = { match: /^PUT .*\/blobs\//, count: 1, dropAfterBytes: 1000 };
    const run = await job(r1, files, {
      beforePost: async () => server.setFaults([drop]),
    });
    expect(drop.count).toBe(0); // the connection was dropped
    expect(run.post.exitCode).toBe(0);
    expect(warnings(run.post)).toEqual([]);
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 5; }\n');
    const again = await job(r2, []);
    expect(again.main.outputs['tier']).toBe('bucket');
    const got = await Promise.all(
      files.map((_, i) => fs.readFile(path.join(r2.workspace, 'out', `part-${i}.o`))),
    );
    got.forEach((b, i) => expect(b.equals(files[i] as Buffer)).toBe(true));
  });

  it('a bucket that stops answering mid-save: post warns within remote-timeout, no entry appears', async () => {
    const r = await newRunner();
    await changeSource(r, 'int main(void) { return 8; }\n');
    const run = await job(
      r,
      outputs.map(() => randomBytes(FILE_BYTES)),
      {
        with: { 'remote-timeout': '3s' },
        beforePost: async () => server.setFaults([{ match: /^PUT .*\/entries\//, hold: true }]),
      },
    );
    expect(run.post.exitCode).toBe(0);
    expect(run.post.stderr).not.toMatch(/step killed/);
    const warned = warnings(run.post);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/bucket failed: the bucket upload did not finish within 3 s/);
    // Blobs first, entry last: the entry was never written, so no reader can find it.
    const r2 = await newRunner();
    await changeSource(r2, 'int main(void) { return 8; }\n');
    const again = await job(r2, outputs, { with: { save: 'never', 'restore-keys': 'none' } });
    expect(again.main.outputs['cache-hit']).toBe('false');
    expect(warnings(again.main)).toEqual([]);
    // The held request goes on now; like a real service, it may yet land (whole: its blobs are
    // all there), which no later test depends on.
    server.release();
  });

  it('a malformed bucket input fails the step, naming the input and the form', async () => {
    const r = await newRunner();
    const run = await job(r, outputs, { with: { bucket: 'S3://My_Bucket' } });
    expect(run.main.exitCode).not.toBe(0);
    expect(run.main.annotations.map((a) => a.message).join('\n')).toMatch(
      /Input 'bucket'.*s3:\/\/name\/prefix/,
    );
  });

  type Spec = { env?: Record<string, string>; with?: Record<string, string> };
  it.each<[string, Spec, RegExp]>([
    [
      'no credentials',
      { env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } },
      /no AWS credentials for the 'bucket' input/,
    ],
    [
      'an unknown bucket',
      { with: { bucket: 's3://no-such-bucket/ci' } },
      /the bucket 'no-such-bucket' does not exist \(the 'bucket' input/,
    ],
    [
      'a wrong endpoint',
      { with: { 'bucket-endpoint': 'http://127.0.0.1:9' } },
      /cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED; check 'bucket-endpoint'/,
    ],
  ])('%s: a warning naming what to fix, a miss, and a green step', async (_, spec, message) => {
    const r = await newRunner();
    const run = await job(r, outputs, spec);
    expect(run.main.exitCode).toBe(0);
    expect(run.post.exitCode).toBe(0);
    expect(run.built).toBe(true);
    expect(warnings(run.main).join('\n')).toMatch(message);
  });
});
