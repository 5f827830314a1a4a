/**
 * The entries of the loopback cache service: an in-memory index over blobs kept on disk.
 *
 * Layout under the data dir: `blobs/<id>` (committed blob of an entry), `blocks/<id>/<hex>` (staged
 * blocks, removed on commit), `tmp/` (every write lands here first and is renamed into place).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tempName } from '../../src/util/fsx.js';
import { READ, WRITE, type Scope } from './token.js';

export interface StoredEntry {
  id: number;
  key: string;
  version: string;
  scope: string;
  sizeBytes: number;
  createdAt: Date;
  lastAccessedAt: Date;
  finalized: boolean;
  /** Path of the stored blob on disk (exists once an upload has been committed). */
  file: string;
}

/** The service's own record: a StoredEntry plus whether a blob has been committed for it. */
export interface Entry extends StoredEntry {
  committed: boolean;
}

export interface LookupRequest {
  key: string;
  restoreKeys: readonly string[];
  version: string;
}

/**
 * The service's matching rule, as a pure function: walk the readable scopes in token order; in
 * each, among finalized entries of the same version, try the key exactly, then the newest entry
 * whose key starts with it, then each restore key in turn the same way.
 */
export function findMatch<E extends StoredEntry>(
  entries: readonly E[],
  scopes: readonly Scope[],
  req: LookupRequest,
): E | undefined {
  const keys = [req.key, ...req.restoreKeys];
  for (const s of scopes) {
    if ((s.permission & READ) === 0) continue;
    const pool = entries.filter(
      (e) => e.finalized && e.scope === s.scope && e.version === req.version,
    );
    for (const k of keys) {
      const exact = pool.find((e) => e.key === k);
      if (exact) return exact;
      const prefixed = pool.filter((e) => e.key.startsWith(k)).sort(newestFirst);
      if (prefixed[0]) return prefixed[0];
    }
  }
  return undefined;
}

function newestFirst(a: StoredEntry, b: StoredEntry): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id;
}

export function firstWritableScope(scopes: readonly Scope[]): string | undefined {
  return scopes.find((s) => (s.permission & WRITE) !== 0)?.scope;
}

export function hasReadableScope(scopes: readonly Scope[]): boolean {
  return scopes.some((s) => (s.permission & READ) !== 0);
}

export class EntryStore {
  private readonly byId = new Map<number, Entry>();
  private nextId = 1;
  readonly blobsDir: string;
  readonly blocksDir: string;
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.blobsDir = path.join(dataDir, 'blobs');
    this.blocksDir = path.join(dataDir, 'blocks');
    this.tmpDir = path.join(dataDir, 'tmp');
    for (const d of [this.blobsDir, this.blocksDir, this.tmpDir])
      fs.mkdirSync(d, { recursive: true });
  }

  all(): Entry[] {
    return [...this.byId.values()];
  }

  get(id: number): Entry | undefined {
    return this.byId.get(id);
  }

  find(key: string, version: string, scope: string): Entry | undefined {
    return this.all().find((e) => e.key === key && e.version === version && e.scope === scope);
  }

  /** A new, unfinalized entry (a reservation); ids are never reused, even across reset(). */
  create(key: string, version: string, scope: string, createdAt = new Date()): Entry {
    const id = this.nextId++;
    const entry: Entry = {
      id,
      key,
      version,
      scope,
      sizeBytes: 0,
      createdAt,
      lastAccessedAt: createdAt,
      finalized: false,
      committed: false,
      file: path.join(this.blobsDir, String(id)),
    };
    this.byId.set(id, entry);
    return entry;
  }

  /** A fresh temp file path inside the data dir (same filesystem as the blobs). */
  tempFile(hint: string): string {
    return tempName(this.tmpDir, hint);
  }

  blockFile(id: number, blockId: string): string {
    return path.join(this.blocksDir, String(id), Buffer.from(blockId, 'utf8').toString('hex'));
  }

  /** Remove every entry and every file; ids keep counting so stale URLs never hit new entries. */
  clear(): void {
    this.byId.clear();
    for (const d of [this.blobsDir, this.blocksDir, this.tmpDir]) {
      fs.rmSync(d, { recursive: true, force: true });
      fs.mkdirSync(d, { recursive: true });
    }
  }

  /** A random etag in Azure's quoted form. */
  static etag(): string {
    return `"0x${randomBytes(8).toString('hex').toUpperCase()}"`;
  }
}
