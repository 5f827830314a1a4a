/**
 * Canonical forms: the byte strings that are hashed. Everything here is pure; a change in any
 * function changes every key, so it goes with a new KEY_SCHEMA.
 */
import { compareBytes } from '../util/bytes.js';

/** Thrown by canonicalJson for a value that has no JSON form (Infinity, Buffer, Date, Map...). */
export class NotJsonData extends Error {
  override readonly name = 'NotJsonData';
}

/**
 * JSON with object keys sorted by byte order at every level and no whitespace, so two
 * documents that differ only in key order or formatting give the same text. Accepts only plain
 * JSON data (null, booleans, finite numbers, strings, arrays, plain objects); anything else
 * throws NotJsonData rather than being coerced into something ambiguous.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new NotJsonData(`not a finite number: ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((v: unknown) => canonicalJson(v)).join(',')}]`;
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort(compareBytes);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  throw new NotJsonData(`not JSON data: ${Object.prototype.toString.call(value)}`);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Text as a checkout on any platform gives it: CRLF and lone CR become LF, trailing whitespace
 * is cut from every line, blank lines before and after are dropped.
 */
export function normaliseText(text: string): string {
  const lines = text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/\s+$/, ''));
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start] === '') start++;
  while (end > start && lines[end - 1] === '') end--;
  return lines.slice(start, end).join('\n');
}

/**
 * CRLF -> LF for text files, so a checkout with core.autocrlf gives the same hash. Content with
 * a NUL byte is treated as binary (git's own test) and left alone.
 */
export function normaliseLineEndings(data: Buffer): Buffer {
  if (data.includes(0) || !data.includes(0x0d)) return data;
  const out = Buffer.allocUnsafe(data.length);
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i] as number;
    if (byte === 0x0d && data[i + 1] === 0x0a) continue;
    out[n++] = byte;
  }
  return out.subarray(0, n);
}

/** Truncate for display only (the hash is always over the full form). */
export function displayValue(text: string, max = 200): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}
