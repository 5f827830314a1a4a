import { createHash } from 'node:crypto';

/**
 * Byte-order (UTF-8) comparison of strings, without allocating in the common case: UTF-16 code
 * units sort as UTF-8 bytes below the surrogates; where a surrogate or U+E000..U+FFFF decides
 * (or a string ends in a high surrogate), the UTF-8 bytes are compared.
 */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x < y ? -1 : 1;
    return compareUtf8(a, b);
  }
  const last = n > 0 ? a.charCodeAt(n - 1) : 0;
  if (last >= 0xd800 && last < 0xdc00) return compareUtf8(a, b);
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function sortBytes(values: Iterable<string>): string[] {
  return [...values].sort(compareBytes);
}

export function sha256(data: string | Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Forward slashes, no leading './', no trailing slash. */
export function toPosix(p: string): string {
  let s = p.replace(/\\/g, '/');
  while (s.startsWith('./')) s = s.slice(2);
  if (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

/** 1536 -> '1.5 KiB'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
