/**
 * Fault switches of the loopback cache service. Each spec fails `count` requests (default: all)
 * and then disappears; `setFaults` replaces the whole set.
 */

export type TwirpMethod =
  'CreateCacheEntry' | 'FinalizeCacheEntryUpload' | 'GetCacheEntryDownloadURL';

export interface FaultSpec {
  /** HTTP status to answer, e.g. 503, 429, 500. */
  status: number;
  /** How many requests to fail; default Infinity. */
  count?: number;
  /** Raw body; default a Twirp JSON error `{code, msg}` (or an Azure XML error for blob PUTs). */
  body?: string;
}

export interface DownloadFault {
  /** Answer this status (with an Azure XML error body) instead of the blob. */
  status?: number;
  count?: number;
  /** Send the full content-length, then close the socket after this many body bytes. */
  truncateAt?: number;
  /** Wait this long before answering at all. */
  delayMs?: number;
  /** Send the headers, then wait this long before the body. */
  stallMs?: number;
  /** Send the body `bytes` at a time, one piece every `everyMs`, for as long as it lasts. */
  trickle?: { bytes: number; everyMs: number };
}

/** Accept the request, read its body, and never answer (the connection stays open). */
export interface SilentFault {
  count?: number;
}

export interface Faults {
  /** Per Twirp method, or '*' for all three; a method's own spec wins over '*'. */
  twirp?: Partial<Record<TwirpMethod | '*', FaultSpec>>;
  /** Every blob PUT (single upload, staged block, block list). */
  blobPut?: FaultSpec;
  /** Blob PUTs that are never answered (checked before `blobPut`). */
  silentUpload?: SilentFault;
  /** Blob GETs (HEAD is never faulted). */
  download?: DownloadFault;
}

/** Mutable copy of the faults with remaining counts; `take*` consumes one use. */
export class FaultState {
  private twirp = new Map<string, FaultSpec>();
  private blobPut: FaultSpec | undefined;
  private silentUpload: SilentFault | undefined;
  private download: DownloadFault | undefined;

  set(f: Faults): void {
    this.twirp = new Map(Object.entries(f.twirp ?? {}).map(([k, v]) => [k, { ...v }]));
    this.blobPut = f.blobPut ? { ...f.blobPut } : undefined;
    this.silentUpload = f.silentUpload ? { ...f.silentUpload } : undefined;
    this.download = f.download ? { ...f.download } : undefined;
  }

  takeTwirp(method: string): FaultSpec | undefined {
    for (const name of [method, '*']) {
      const spec = this.twirp.get(name);
      if (spec && use(spec)) return spec;
      if (spec) this.twirp.delete(name);
    }
    return undefined;
  }

  takeBlobPut(): FaultSpec | undefined {
    const spec = this.blobPut;
    if (spec && use(spec)) return spec;
    this.blobPut = undefined;
    return undefined;
  }

  takeSilentUpload(): SilentFault | undefined {
    const spec = this.silentUpload;
    if (spec && use(spec)) return spec;
    this.silentUpload = undefined;
    return undefined;
  }

  takeDownload(): DownloadFault | undefined {
    const spec = this.download;
    if (spec && use(spec)) return spec;
    this.download = undefined;
    return undefined;
  }
}

/** Consume one use of a spec; false once it has none left. */
function use(spec: { count?: number }): boolean {
  const left = spec.count ?? Infinity;
  if (left <= 0) return false;
  spec.count = left - 1;
  return true;
}
