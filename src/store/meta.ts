/**
 * Entry metadata on disk (meta.json) and the index (index.json): their validation, and the
 * mapping from a request's package/version/hash to the entry directory.
 */
import { StoreError } from '../errors.js';
import { compareBytes, sha256 } from '../util/bytes.js';
import type { EntryMeta } from './types.js';

/** Names at the top of the store that a package directory must never take. */
const RESERVED = new Set(['blobs', 'tmp', 'index.json', 'index.json.lock']);
const HASH = /^[0-9a-f]{8,128}$/;
const MAX_NAME = 100;
const MAX_KEY = 1024;

/**
 * A directory name for a package or version: only [A-Za-z0-9._+-], no leading dot (so never
 * '.', '..' or hidden), bounded length, never one of the store's own names.
 */
export function safeName(s: string): string {
  let out = s.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, (dots) => '_'.repeat(dots.length));
  if (out === '') out = '_';
  if (out.length > MAX_NAME) out = `${out.slice(0, MAX_NAME - 17)}-${sha256(s).slice(0, 16)}`;
  if (RESERVED.has(out)) out = `${out}_`;
  return out;
}

export function checkHash(hash: unknown): string {
  if (typeof hash !== 'string' || !HASH.test(hash)) {
    throw new StoreError(
      `entry hash must be 8-128 lowercase hex digits, got ${JSON.stringify(hash)}`,
    );
  }
  return hash;
}

/** `<package>/<version>/<hash>`, posix, relative to the store root. */
export function entryDirName(m: { package: string; version: string; hash: string }): string {
  return `${safeName(m.package)}/${safeName(m.version)}/${checkHash(m.hash)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, k: string, max = MAX_KEY): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > max) throw new StoreError(`meta: bad ${k}`);
  return v;
}

function time(o: Record<string, unknown>, k: string): string {
  const v = str(o, k, 64);
  if (!Number.isFinite(Date.parse(v))) throw new StoreError(`meta: bad ${k}`);
  return v;
}

function count(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new StoreError(`meta: bad ${k}`);
  }
  return v;
}

export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || key.includes('\0')) {
    throw new StoreError('entry key must be a non-empty string of at most 1024 characters');
  }
  return key;
}

/** Validates an untrusted EntryMeta (from meta.json or a pack header). */
export function parseMeta(raw: unknown): EntryMeta {
  if (!isObject(raw)) throw new StoreError('meta is not an object');
  if (raw['schema'] !== 1)
    throw new StoreError(`meta: unknown schema ${JSON.stringify(raw['schema'])}`);
  const roots = raw['roots'];
  if (!Array.isArray(roots) || !roots.every((r) => typeof r === 'string')) {
    throw new StoreError('meta: bad roots');
  }
  const meta: EntryMeta = {
    schema: 1,
    key: checkKey(raw['key']),
    package: str(raw, 'package'),
    version: str(raw, 'version'),
    hash: checkHash(raw['hash']),
    platform: str(raw, 'platform'),
    variant: str(raw, 'variant'),
    createdAt: time(raw, 'createdAt'),
    lastAccessAt: time(raw, 'lastAccessAt'),
    sizeBytes: count(raw, 'sizeBytes'),
    storedBytes: count(raw, 'storedBytes'),
    files: count(raw, 'files'),
    roots: roots as string[],
  };
  return 'keyManifest' in raw ? { ...meta, keyManifest: raw['keyManifest'] } : meta;
}

/** One line of index.json: where the entry lives plus the fields lookups need. */
export interface IndexRecord {
  readonly key: string;
  readonly dir: string;
  readonly package: string;
  readonly version: string;
  readonly hash: string;
  readonly platform: string;
  readonly variant: string;
  readonly createdAt: string;
  readonly lastAccessAt: string;
  readonly sizeBytes: number;
  readonly storedBytes: number;
  readonly files: number;
}

export interface IndexFile {
  readonly schema: 1;
  /** Sorted by key, byte order. */
  readonly entries: readonly IndexRecord[];
}

export function toRecord(m: EntryMeta): IndexRecord {
  return {
    key: m.key,
    dir: entryDirName(m),
    package: m.package,
    version: m.version,
    hash: m.hash,
    platform: m.platform,
    variant: m.variant,
    createdAt: m.createdAt,
    lastAccessAt: m.lastAccessAt,
    sizeBytes: m.sizeBytes,
    storedBytes: m.storedBytes,
    files: m.files,
  };
}

export function makeIndex(records: Iterable<IndexRecord>): IndexFile {
  const byKey = new Map<string, IndexRecord>();
  for (const r of records) byKey.set(r.key, r);
  const entries = [...byKey.values()].sort((a, b) => compareBytes(a.key, b.key));
  return { schema: 1, entries };
}

/** Parses index.json; throws when it is not a well-formed index (the caller rebuilds it). */
export function parseIndex(text: string): IndexFile {
  const raw: unknown = JSON.parse(text);
  if (!isObject(raw) || raw['schema'] !== 1 || !Array.isArray(raw['entries'])) {
    throw new StoreError('index.json is not an index');
  }
  const records: IndexRecord[] = [];
  for (const r of raw['entries'] as unknown[]) {
    if (!isObject(r)) throw new StoreError('index.json: bad record');
    const rec: IndexRecord = {
      key: checkKey(r['key']),
      dir: str(r, 'dir', 512),
      package: str(r, 'package'),
      version: str(r, 'version'),
      hash: checkHash(r['hash']),
      platform: str(r, 'platform'),
      variant: str(r, 'variant'),
      createdAt: time(r, 'createdAt'),
      lastAccessAt: time(r, 'lastAccessAt'),
      sizeBytes: count(r, 'sizeBytes'),
      storedBytes: count(r, 'storedBytes'),
      files: count(r, 'files'),
    };
    // The directory is never taken from the file: it must be the one the fields name.
    if (rec.dir !== entryDirName(rec)) throw new StoreError('index.json: record points elsewhere');
    records.push(rec);
  }
  return makeIndex(records);
}
