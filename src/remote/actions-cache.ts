/**
 * The one file that imports @actions/cache (STYLE.md habit 8). It uploads a remote entry: a
 * single pack file, archived and sent by the official client. The version the client computes
 * comes from the literal path strings, so the pack is always given as the bare relative name
 * PACK_NAME from inside its own directory: one version on every runner (on Windows, one of its
 * own unless `crossOs`: see twirp.cacheVersion).
 */
import * as cache from '@actions/cache';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage, RemoteError } from '../errors.js';
import { deadline, within } from './deadline.js';
import { PACK_NAME } from './twirp.js';

export function remoteAvailable(): boolean {
  return cache.isFeatureAvailable();
}

/**
 * Upload `packFile` (whose basename must be PACK_NAME) under `key`, within `timeoutMs`. Resolves
 * once the entry is saved; otherwise throws a RemoteError with the client's reason, or a
 * DeadlineError. The client cannot be cancelled: past the deadline it is abandoned (see
 * deadline.ts), still running, and the step ends its process when its own work is done.
 */
export async function uploadPack(
  packFile: string,
  key: string,
  timeoutMs: number,
  crossOs = false,
): Promise<void> {
  if (path.basename(packFile) !== PACK_NAME) throw new Error(`pack must be named ${PACK_NAME}`);
  const previous = process.cwd();
  process.chdir(path.dirname(packFile));
  const log = new ClientLog();
  try {
    const save = cache.saveCache([PACK_NAME], key, undefined, crossOs);
    const id = await within(save, deadline(timeoutMs, 'the upload'), `the upload of ${key}`);
    if (id === -1) throw new RemoteError(log.reason());
  } catch (err) {
    if (err instanceof Error && (err.name === 'RemoteError' || err.name === 'DeadlineError'))
      throw err;
    // Validation and set-up errors, which @actions/cache throws rather than logs.
    throw new RemoteError(errorMessage(err));
  } finally {
    // The client leaves its directory behind (its file list; its archive too when abandoned,
    // which it may still be reading: on Windows the removal then fails, and RUNNER_TEMP is
    // emptied after the job anyway).
    await log.removeTempDir();
    log.stop();
    process.chdir(previous);
  }
}

/**
 * What @actions/cache says while it saves. It reports a failed save only in the log (at info
 * level for a reserve failure, as a warning or even an error annotation for the rest) and
 * returns -1. Its output is read on its way to stdout: the reason is kept for the one warning
 * the caller gives, and its own ::warning:: and ::error:: commands become plain log lines, so
 * a cache problem is never an error annotation and is warned about once.
 */
class ClientLog {
  /** The client's failure messages, in order ("Failed to save: " taken off). */
  private readonly failures: string[] = [];
  /** Why a reservation failed, which the client says only at debug level. */
  private cause = '';
  /** Where the client writes its archive (also said at debug level). */
  private archive = '';
  private readonly original: typeof process.stdout.write;

  constructor() {
    const original = process.stdout.write;
    this.original = original;
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return (original as (...a: unknown[]) => boolean).call(
        process.stdout,
        text
          .split('\n')
          .map((l) => this.line(l))
          .join('\n'),
        ...rest,
      );
    }) as typeof process.stdout.write;
  }

  private line(line: string): string {
    const command = /^::(warning|error|debug)(?: [^:]*)?::(.*?)(\r?)$/.exec(line);
    if (command) {
      const message = unescapeData(command[2] ?? '');
      if (command[1] === 'debug') {
        const m = /^Failed to reserve cache: (?:Error: )?(.*)$/s.exec(message);
        if (m) this.cause = m[1] ?? '';
        const a = /^Archive Path: (.+)$/.exec(message);
        if (a) this.archive = a[1] ?? '';
        return line;
      }
      const oneLine = message.replace(/\s*\r?\n\s*/g, ' ');
      this.failures.push(oneLine.replace(/^Failed to save: /, ''));
      return `${oneLine}${command[3] ?? ''}`;
    }
    if (line.startsWith('Failed to save: ')) this.failures.push(line.slice(16).trimEnd());
    return line;
  }

  reason(): string {
    const last = this.failures.at(-1) ?? 'the runner cache client gave no reason';
    return this.cause !== '' && !last.includes(this.cause) ? `${last} (${this.cause})` : last;
  }

  /** Remove the directory the client made for its archive: a UUID of its own in RUNNER_TEMP. */
  async removeTempDir(): Promise<void> {
    const dir = path.dirname(this.archive);
    const temp = process.env['RUNNER_TEMP'];
    if (this.archive === '' || !temp || path.dirname(dir) !== path.resolve(temp)) return;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(path.basename(dir)))
      return;
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  stop(): void {
    process.stdout.write = this.original;
  }
}

function unescapeData(s: string): string {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}
