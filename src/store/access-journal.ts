/**
 * The access journal (`<root>/access.journal`): entries' last-access times since the index was
 * last written. A hit (`touch`) appends one small record with one O_APPEND write and takes no
 * lock, instead of rewriting the whole index; readers apply new records on top of the index
 * (the latest time wins, so reading a record twice is harmless), and the next structural write
 * (save, remove) carries the times into index.bin and, once the journal has grown past
 * JOURNAL_ROTATE_BYTES, removes it.
 *
 * Record: "CLAJ" | payload length u16 LE | crc32 of the payload u32 LE | payload: time f64 LE
 * (epoch ms) and the entry key in utf-8. A record cut short at the end of the file is left for
 * the next read (it may still be being written); a damaged one (a torn append after a crash) is
 * skipped up to the next "CLAJ". Nothing here can make the index wrong: at worst a touch is lost
 * (a record appended in the instant between the last read and the removal of the journal).
 */
import { promises as fs } from 'node:fs';
import { crc32 } from 'node:zlib';

export const JOURNAL_NAME = 'access.journal';
/** A structural write removes the journal (its times now in the index) past this size. */
export const JOURNAL_ROTATE_BYTES = 64 * 1024;
const MARK = Buffer.from('CLAJ', 'latin1');
const HEAD = 10;
const MAX_PAYLOAD = 0xffff;

/** One touch record. */
export function touchRecord(key: string, at: number): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  const len = 8 + keyBytes.length;
  if (len > MAX_PAYLOAD) throw new RangeError('journal: key too long');
  const rec = Buffer.alloc(HEAD + len);
  MARK.copy(rec, 0);
  rec.writeUInt16LE(len, 4);
  rec.writeDoubleLE(at, HEAD);
  keyBytes.copy(rec, HEAD + 8);
  rec.writeUInt32LE(crc32(rec.subarray(HEAD)), 6);
  return rec;
}

/** Appends a touch in one write (O_APPEND: concurrent appenders never interleave). */
export async function appendTouch(file: string, key: string, at: number): Promise<void> {
  const rec = touchRecord(key, at);
  const handle = await fs.open(file, 'a');
  try {
    const { bytesWritten } = await handle.write(rec, 0, rec.length);
    if (bytesWritten !== rec.length) throw new Error('journal: short append');
  } finally {
    await handle.close();
  }
}

/**
 * Adds the touches in `buf` to `into` (latest time per key); returns how many bytes were
 * consumed (up to a record cut short at the end, which the next read starts at).
 */
export function parseTouches(buf: Buffer, into: Map<string, number>): number {
  let p = 0;
  while (p < buf.length) {
    if (buf.length - p < HEAD) return p;
    if (buf.compare(MARK, 0, 4, p, p + 4) !== 0) {
      p = resync(buf, p);
      continue;
    }
    const len = buf.readUInt16LE(p + 4);
    if (buf.length - p - HEAD < len) return p;
    const payload = buf.subarray(p + HEAD, p + HEAD + len);
    const at = len >= 8 ? payload.readDoubleLE(0) : Number.NaN;
    if (crc32(payload) !== buf.readUInt32LE(p + 6) || !Number.isFinite(at) || at < 0) {
      p = resync(buf, p);
      continue;
    }
    const key = payload.toString('utf8', 8);
    if (!((into.get(key) ?? -1) >= at)) into.set(key, at);
    p += HEAD + len;
  }
  return p;
}

/** The next record mark after `p`, or the end. */
function resync(buf: Buffer, p: number): number {
  const next = buf.indexOf(MARK, p + 1);
  return next < 0 ? buf.length : next;
}

/** What one reader has consumed of the journal: which file (a removed one is new) and how far. */
export class JournalTail {
  private id: string | undefined;
  private offset = 0;

  constructor(readonly file: string) {}

  /** Forget the position: the next read starts at the beginning. */
  reset(): void {
    this.id = undefined;
    this.offset = 0;
  }

  /** Touches appended since the last read (key -> latest time); empty when there is none. */
  async read(): Promise<Map<string, number>> {
    const touches = new Map<string, number>();
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch {
      this.reset();
      return touches;
    }
    try {
      const st = await handle.stat();
      const id = `${st.dev}:${st.ino}:${st.birthtimeMs}`;
      if (id !== this.id || st.size < this.offset) {
        this.id = id;
        this.offset = 0;
      }
      if (st.size === this.offset) return touches;
      const buf = Buffer.allocUnsafe(st.size - this.offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      this.offset += parseTouches(buf.subarray(0, bytesRead), touches);
      return touches;
    } finally {
      await handle.close();
    }
  }

  /** Bytes read so far from the current journal. */
  get consumed(): number {
    return this.offset;
  }

  /** True when the journal is still the file last read and nothing was appended since. */
  async unchanged(): Promise<boolean> {
    try {
      const st = await fs.stat(this.file);
      return `${st.dev}:${st.ino}:${st.birthtimeMs}` === this.id && st.size === this.offset;
    } catch {
      return false;
    }
  }
}
