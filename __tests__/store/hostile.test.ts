/**
 * Hostile entries: a tampered table in the local store, and the same tables arriving in a pack
 * (the one decoder of both: table.ts `decodeTable`, `tableManifest`, then `parseManifest`). Each must be refused with nothing written outside the root and the
 * workspace as it was, on an ordinary filesystem and on a case-insensitive one (a FUSE mount,
 * test-support/casefold.ts; skipped, saying why, only where none can be mounted).
 */
import { describe, it, expect } from '@jest/globals';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../../src/store/index.js';
import { PACK_VERSION } from '../../src/store/pack.js';
import { sha256 } from '../../src/util/bytes.js';
import { caseFoldingSkipReason } from '../../test-support/casefold.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { tableOf } from '../../test-support/store/tables.js';
import { hostileManifests, hostileTables, PAYLOAD } from './hostile-cases.js';
import {
  blobOf,
  buildPack as buildAnyPack,
  dirManifest,
  fileEntry,
  packMeta,
  snapshotTree,
  writeTree,
  type Sandbox,
  withFoldingSandbox,
  withSandbox,
} from './helpers.js';

function buildPack(
  header: Parameters<typeof buildAnyPack>[0],
  blobs: Parameters<typeof buildAnyPack>[1],
): Buffer {
  return buildAnyPack(header, blobs, { version: PACK_VERSION });
}

const noFolding = await caseFoldingSkipReason();
/** A test on a case-folding mount, or skipped with the reason in its name. */
function onFoldingMount(name: string, fn: () => Promise<void>): void {
  if (noFolding === undefined) it(`${name}, on a case-insensitive filesystem`, fn);
  else it.skip(`${name}, on a case-insensitive filesystem (skipped: ${noFolding})`, fn);
}

/** What a case-folding mount's surroundings hold: a path climbing out of it lands here. */
async function expectAroundUntouched(around: string | undefined): Promise<void> {
  if (around !== undefined) expect((await fs.readdir(around)).sort()).toEqual(['backing', 'mnt']);
}

/**
 * Every hostile case as table bytes: the hostile manifests (each written as the table that says
 * the same as nearly as the format can; what it cannot say, such as a name with a slash, comes
 * out as a table the decoder refuses), then the hand-made hostile tables. [name, table, the
 * errors it may be refused with].
 */
function hostileCases(sb: Sandbox): [string, Buffer, string[]][] {
  return [
    ...Object.entries(hostileManifests(sb)).map(([name, entries]): [string, Buffer, string[]] => [
      name,
      tableOf(dirManifest(entries)),
      // (parseManifest's refusal, or the table's structure: `malformed`)
      ['UnsafeEntryError', 'StoreError'],
    ]),
    ...hostileTables().map(([what, body, err]): [string, Buffer, string[]] => [
      `table: ${what}`,
      body,
      [err],
    ]),
  ];
}

/** A refusal: one of the errors `want` names (a StoreError only for a malformed entry). */
function expectRefused(name: string, err: unknown, want: string[]): void {
  const e = err as Error;
  const ok = want.includes(e.name) && (e.name !== 'StoreError' || /malformed|blob/.test(e.message));
  expect([name, e.name, ok]).toEqual([name, e.name, true]);
}

/**
 * Saves `files` as out/ under `key`, each file a blob of its own (no groups); the store, the
 * output's path and the entry's artifact file, which the tests then replace.
 */
async function saveUngrouped(
  sb: Sandbox,
  key: string,
  files: Record<string, string>,
): Promise<{ store: LocalStore; out: string; artifact: string }> {
  const out = path.join(sb.ws, 'out');
  await writeTree(out, files);
  const store = await LocalStore.open(sb.store);
  await store.save({
    key,
    package: 'p',
    version: '1',
    hash: sha256(key),
    platform: 'linux',
    variant: 'rel',
    roots: [{ name: 'out', absPath: out }],
    groupSmallFiles: false,
  });
  return { store, out, artifact: path.join(sb.store, 'p', '1', sha256(key), 'artifact') };
}

/**
 * Saves an entry with the payload and writes each hostile table as its artifact, restoring
 * after each: refused, nothing outside, workspace as it was.
 */
async function refusesHostileArtifacts(sb: Sandbox, around?: string): Promise<void> {
  // (Blobs of their own: the hostile tables below name the payload's digest as a file of its
  // own, not a place in a group.)
  const key = 'clyde-hostile';
  const { store, out, artifact } = await saveUngrouped(sb, key, {
    'payload.txt': PAYLOAD,
    'keep.txt': 'keep',
  });
  const before = await snapshotTree(sb.ws);
  for (const [name, body, want] of hostileCases(sb)) {
    await fs.writeFile(artifact, body);
    const err = await store.restore(key, [{ name: 'out', absPath: out }]).then(
      () => new Error(`${name}: restored`),
      (e: unknown) => e,
    );
    expectRefused(name, err, want);
    expect([name, await fs.readdir(sb.outside)]).toEqual([name, []]);
    expect(await snapshotTree(sb.ws)).toEqual(before);
    await expectAroundUntouched(around);
  }
  // the shared blob survived every refusal
  await fs.writeFile(artifact, tableOf(dirManifest([fileEntry('ok.txt', PAYLOAD)])));
  await store.restore(key, [{ name: 'out', absPath: out }]);
  expect(await fs.readFile(path.join(out, 'ok.txt'), 'utf8')).toBe(PAYLOAD);
}

describe('hostile manifests in the local store', () => {
  it('are refused, nothing written outside, the workspace unchanged', () =>
    withSandbox((sb) => refusesHostileArtifacts(sb)));

  onFoldingMount('are refused, nothing written outside, the workspace unchanged', () =>
    withFoldingSandbox((sb, around) => refusesHostileArtifacts(sb, around)),
  );

  it('a manifest that lies about a shared blob’s size fails without deleting the blob', () =>
    withSandbox(async (sb) => {
      // a blob of its own, which the lying manifest reaches directly
      const key = 'clyde-liar';
      const { store, out, artifact } = await saveUngrouped(sb, key, { 'payload.txt': PAYLOAD });
      const good = await fs.readFile(artifact);
      await fs.writeFile(artifact, tableOf(dirManifest([{ ...fileEntry('x', PAYLOAD), size: 3 }])));
      await expect(store.restore(key, [{ name: 'out', absPath: out }])).rejects.toMatchObject({
        name: 'StoreError',
      });
      await fs.writeFile(artifact, good);
      await fs.rm(out, { recursive: true });
      await store.restore(key, [{ name: 'out', absPath: out }]);
      expect(await fs.readFile(path.join(out, 'payload.txt'), 'utf8')).toBe(PAYLOAD);
    }));
});

async function refusesHostilePacks(sb: Sandbox, around?: string): Promise<void> {
  const store = await LocalStore.open(sb.store);
  const payload = blobOf(PAYLOAD);
  const pack = path.join(sb.base, 'hostile.pack');
  await writeTree(path.join(sb.ws, 'out'), { 'keep.txt': 'keep' });
  const roots = [{ name: 'out', absPath: path.join(sb.ws, 'out') }];
  const before = await snapshotTree(sb.ws);
  let i = 0;
  for (const [name, table, want] of hostileCases(sb)) {
    const key = `k-${i++}`;
    await fs.writeFile(pack, buildPack({ meta: packMeta(key), table }, [payload]));
    const err = await restoreAndAdopt(store, pack, key, { roots }).then(
      () => new Error(`${name}: taken`),
      (e: unknown) => e,
    );
    expectRefused(name, err, want);
    expect([name, await fs.readdir(sb.outside)]).toEqual([name, []]);
    expect(await snapshotTree(sb.ws)).toEqual(before);
  }
  expect(await store.list()).toEqual([]);
  expect(await fs.readdir(sb.outside)).toEqual([]);
  expect(await snapshotTree(sb.ws)).toEqual(before);
  await expectAroundUntouched(around);
}

describe('hostile packs', () => {
  it('are refused before any entry exists, nothing written outside, the workspace unchanged', () =>
    withSandbox((sb) => refusesHostilePacks(sb)));

  onFoldingMount(
    'are refused before any entry exists, nothing written outside, the workspace unchanged',
    () => withFoldingSandbox((sb, around) => refusesHostilePacks(sb, around)),
  );

  it('refuse hostile metadata (a hash that is a path)', () =>
    withSandbox(async (sb) => {
      const store = await LocalStore.open(sb.store);
      const pack = path.join(sb.base, 'p');
      const header = { meta: packMeta('k', '../../../outside'), manifest: dirManifest([]) };
      await fs.writeFile(pack, buildPack(header, []));
      const roots = [{ name: 'out', absPath: path.join(sb.ws, 'out') }];
      await expect(restoreAndAdopt(store, pack, 'k', { roots })).rejects.toMatchObject({
        name: 'StoreError',
      });
      expect(await fs.readdir(sb.outside)).toEqual([]);
      expect(await fs.readdir(sb.ws)).toEqual([]);
      expect(await store.list()).toEqual([]);
    }));
});
