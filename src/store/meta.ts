/**
 * Entry metadata on disk (meta.json): its validation, and the mapping from a request's
 * package/version/hash to the entry directory. The index is index-file.ts.
 */
import { StoreError } from '../errors.js';
import { sha256 } from '../util/bytes.js';
import type { EntryMeta } from './types.js';

/** Names at the top of the store that a package directory must never take. */
const RESERVED = new Set([
  'blobs',
  'tmp',
  'markers',
  'unpacked',
  'statcache',
  'old-layout',
  'layout',
  'index.bin',
  'index.json',
  'index.json.lock',
  'access.journal',
  'store.lock',
  'stats.json',
  'stats.json.lock',
]);
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
