/**
 * Content-addressed blobs: `<root>/blobs/<aa>/<sha256>` holds one zstd frame whose content
 * hashes to the name. Writes go through `<root>/tmp/` and a rename, so a blob is either absent
 * or complete; concurrent writers of one blob are harmless (same content). Reads always verify.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import { sha256 } from '../util/bytes.js';
import { writeFileAtomic } from '../util/fsx.js';
import { FrameSizeMismatch, type Codec } from './codec.js';

const DIGEST = /^[0-9a-f]{64}$/;

export class BlobStore {
  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
    private readonly codec: Codec,
  ) {}

  pathOf(digest: string): string {
    if (!DIGEST.test(digest)) throw new StoreError(`not a sha256 digest: ${digest}`);
    return path.join(this.dir, digest.slice(0, 2), digest);
  }

  /** Compressed size of the stored blob, or undefined when absent. */
  async storedSize(digest: string): Promise<number | undefined> {
    try {
      const st = await fs.stat(this.pathOf(digest));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores `content` (whose sha256 is `digest`) unless the blob exists. Returns the compressed
   * size and whether this call wrote it.
   */
  async put(digest: string, content: Buffer): Promise<{ stored: number; written: boolean }> {
    const existing = await this.storedSize(digest);
    if (existing !== undefined) return { stored: existing, written: false };
    const frame = this.codec.compress(content);
    await writeFileAtomic(this.pathOf(digest), frame, this.tmpDir);
    return { stored: frame.length, written: true };
  }

  /** Stores an already-compressed frame that the caller has verified. */
  async putFrame(digest: string, frame: Buffer): Promise<boolean> {
    if ((await this.storedSize(digest)) !== undefined) return false;
    await writeFileAtomic(this.pathOf(digest), frame, this.tmpDir);
    return true;
  }

  /** The stored frame, unverified (pack export verifies it with `verifyFrame`). */
  async readFrame(digest: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(digest));
    } catch (err) {
      throw new StoreError(`blob ${digest} is missing from the store: ${err}`);
    }
  }

  /** Decompresses `frame` and checks that it holds `size` bytes hashing to `digest`. */
  verifyFrame(digest: string, size: number, frame: Buffer): Buffer {
    const content = this.codec.decompress(frame, size);
    if (sha256(content) !== digest) {
      throw new StoreError(`blob ${digest}: content does not match its digest`);
    }
    return content;
  }

  /**
   * The verified content of a blob. A blob that will not decode, or decodes to content that
   * does not hash to its name, is deleted from the store (it can never become valid) and the
   * error is thrown. A size that disagrees with the manifest's is only thrown: the manifest may
   * be the one at fault, and the blob may be shared.
   */
  async read(digest: string, size: number): Promise<Buffer> {
    const frame = await this.readFrame(digest);
    try {
      return this.verifyFrame(digest, size, frame);
    } catch (err) {
      if (!(err instanceof FrameSizeMismatch)) await this.remove(digest);
      throw err instanceof StoreError ? err : new StoreError(String(err));
    }
  }

  async remove(digest: string): Promise<void> {
    await fs.rm(this.pathOf(digest), { force: true });
  }
}
