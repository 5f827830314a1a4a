/**
 * Hashing one batch of source files (hashing.ts says how and why), and the messages of the
 * hashing workers (hash-worker.ts): imported by both threads, so the worker runs this very code,
 * type-checked like the rest.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

/** What a hashing worker is started with. */
export interface HashWorkerData {
  /** The workspace, ending with a separator. */
  readonly root: string;
  /** The hash of git's object format ('sha1' or 'sha256'). */
  readonly format: string;
}

/** Main thread to worker: paths to hash and the conversion of each (CONVERSION_CODE). */
export interface HashRequest {
  readonly rels: string[];
  readonly convs: number[];
}

/** Worker to main thread: one per request, in order. */
export type HashReply = BatchResult;

/** Files at or above this size are hashed in chunks instead of being read whole. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;
/** The reusable read buffer's first size, and the chunk size for large files. */
export const CHUNK_BYTES = 1024 * 1024;

/** What hashing one batch gives: per path an id, or null (not a file or symlink, or gone). */
export interface BatchResult {
  readonly ids: (string | null)[];
  /** The first failure in the batch, if any: the key cannot be computed. */
  readonly error?: string;
}

/** The reused read buffer: grown to the largest small file seen, never past LARGE_FILE_BYTES. */
export interface ReadBuffer {
  buf: Buffer;
}

/**
 * The ids of `rels` (relative to `root`, which ends with a separator), on whichever thread
 * calls it: hashing.ts for few files, hash-worker.ts for many.
 */
export function hashBatch(
  root: string,
  rels: readonly string[],
  convs: readonly number[],
  format: string,
  largeBytes: number,
  pool: ReadBuffer,
): BatchResult {
  const c = fs.constants;
  const noFollow = c.O_NOFOLLOW;
  const flags = c.O_RDONLY | (noFollow ?? 0) | (c.O_NONBLOCK ?? 0);
  const changed = (abs: string) => new Error(`${abs} changed while it was being hashed`);
  const link = (abs: string): string => {
    const target = Buffer.from(fs.readlinkSync(abs), 'utf8');
    return `link:${crypto.createHash(format).update(`blob ${target.length}\0`).update(target).digest('hex')}`;
  };
  /** git's gather_stats, over chunks: `cr` says the previous chunk ended with a CR. */
  interface Stats {
    crlf: number;
    lonecr: number;
    nul: number;
    printable: number;
    nonprintable: number;
    cr: boolean;
    last: number;
  }
  const gather = (st: Stats, b: Buffer, len: number): void => {
    for (let i = 0; i < len; i++) {
      const ch = b[i] as number;
      if (st.cr) {
        st.cr = false;
        if (ch === 10) {
          st.crlf++;
          continue;
        }
        st.lonecr++;
      }
      if (ch === 13) st.cr = true;
      else if (ch === 10) continue;
      else if (ch === 127) st.nonprintable++;
      else if (ch < 32) {
        if (ch === 8 || ch === 9 || ch === 27 || ch === 12) st.printable++;
        else {
          if (ch === 0) st.nul++;
          st.nonprintable++;
        }
      } else st.printable++;
    }
    if (len > 0) st.last = b[len - 1] as number;
  };
  /** Whether git's clean conversion drops any CR from content with these stats. */
  const converts = (st: Stats, conv: number): boolean => {
    if (st.cr) st.lonecr++; // a CR at the very end
    st.cr = false;
    if (st.crlf === 0) return false;
    if (conv === 2) return true;
    const nonprintable = st.nonprintable - (st.last === 26 ? 1 : 0); // a final DOS EOF
    return st.lonecr === 0 && st.nul === 0 && st.printable >> 7 >= nonprintable;
  };
  const fresh = (): Stats => ({
    crlf: 0,
    lonecr: 0,
    nul: 0,
    printable: 0,
    nonprintable: 0,
    cr: false,
    last: -1,
  });
  /**
   * Drops each CR before an LF from b[0, len) in place; a final CR is left out and `held.cr`
   * set (the caller decides on it with the next chunk). Starts with held.cr false.
   */
  const strip = (b: Buffer, len: number, held: { cr: boolean }): number => {
    let n = 0;
    for (let i = 0; i < len; i++) {
      const ch = b[i] as number;
      if (held.cr) {
        held.cr = false;
        if (ch !== 10) b[n++] = 13; // n < i: the held CR (at i - 1) was not written
      }
      if (ch === 13) held.cr = true;
      else b[n++] = ch;
    }
    return n;
  };
  /** Reads the whole of fd into pool.buf from `at`; the count read (one more: it grew). */
  const readAll = (fd: number, at: number, size: number, abs: string): number => {
    const end = at + size;
    if (pool.buf.length <= end) {
      pool.buf = Buffer.allocUnsafe(
        Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64),
      );
    }
    let n = at;
    for (;;) {
      const got = fs.readSync(fd, pool.buf, n, end + 1 - n, null);
      if (got === 0) break;
      n += got;
      if (n >= end) break; // a read short of what was asked: the end of the file
    }
    if (n !== end) throw changed(abs);
    return n;
  };
  const one = (abs: string, conv: number): string | null => {
    if (noFollow === undefined && fs.lstatSync(abs).isSymbolicLink()) return link(abs);
    let fd: number;
    try {
      fd = fs.openSync(abs, flags);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ELOOP') throw err;
      return link(abs);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) return null;
      if (st.size >= largeBytes) {
        // In chunks. The bytes as they are first; with a conversion, a file with a CR in it is
        // then read again to decide it, and once more to hash what git would store.
        const h = crypto.createHash(format).update(`blob ${st.size}\0`);
        let sawCR = false;
        let total = 0;
        for (;;) {
          const got = fs.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          h.update(pool.buf.subarray(0, got));
          if (conv !== 0 && !sawCR) sawCR = pool.buf.subarray(0, got).indexOf(13) >= 0;
        }
        if (total !== st.size) throw changed(abs);
        if (!sawCR) return h.digest('hex');
        const stats = fresh();
        total = 0;
        for (;;) {
          const got = fs.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          gather(stats, pool.buf, got);
        }
        if (total !== st.size) throw changed(abs);
        if (!converts(stats, conv)) return h.digest('hex');
        const size = st.size - stats.crlf;
        const c = crypto.createHash(format).update(`blob ${size}\0`);
        const held = { cr: false };
        let hashed = 0;
        total = 0;
        for (;;) {
          const got = fs.readSync(fd, pool.buf, 0, pool.buf.length, total);
          if (got === 0) break;
          total += got;
          if (held.cr && pool.buf[0] !== 10) {
            c.update('\r'); // a CR that ended the last chunk, and no LF after it
            hashed++;
          }
          held.cr = false;
          const n = strip(pool.buf, got, held);
          hashed += n;
          c.update(pool.buf.subarray(0, n));
        }
        if (held.cr) {
          c.update('\r');
          hashed++;
        }
        if (total !== st.size || hashed !== size) throw changed(abs);
        return c.digest('hex');
      }
      if (conv !== 0) {
        // The content first, then the header of its cleaned size in front of it.
        const room = 24;
        readAll(fd, room, st.size, abs);
        const content = pool.buf.subarray(room, room + st.size);
        let size = content.length;
        const stats = fresh();
        if (content.indexOf(13) >= 0) gather(stats, content, content.length);
        if (stats.crlf > 0 && converts(stats, conv)) {
          const held = { cr: false };
          size = strip(content, content.length, held);
          if (held.cr) content[size++] = 13; // a final CR stays
        }
        const header = Buffer.from(`blob ${size}\0`, 'latin1');
        header.copy(pool.buf, room - header.length);
        return crypto.hash(format, pool.buf.subarray(room - header.length, room + size), 'hex');
      }
      // Header and content side by side, and one byte of room: reading it means the file grew.
      const header = `blob ${st.size}\0`;
      const end = header.length + st.size;
      if (pool.buf.length <= end) {
        pool.buf = Buffer.allocUnsafe(
          Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64),
        );
      }
      const n = pool.buf.write(header, 0, 'latin1');
      readAll(fd, n, st.size, abs);
      return crypto.hash(format, pool.buf.subarray(0, end), 'hex');
    } finally {
      fs.closeSync(fd);
    }
  };
  const ids: (string | null)[] = [];
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i] as string;
    const abs = root + rel;
    try {
      ids.push(one(abs, convs[i] ?? 0));
    } catch (err) {
      const code = (err as { code?: string } | undefined)?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        ids.push(null); // gone since it was listed
        continue;
      }
      const message = String((err as Error).message ?? err);
      return { ids, error: message.startsWith(abs) ? message : `${abs}: ${message}` };
    }
  }
  return { ids };
}
