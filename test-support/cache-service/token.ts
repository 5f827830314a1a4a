/**
 * Runtime tokens and signed blob URLs of the loopback cache service.
 *
 * A runtime token is JWT-shaped (HS256 over a per-service secret); its `ac` claim is a JSON
 * string such as `[{"Scope":"refs/heads/main","Permission":3}]`, as on GitHub. Signed URLs carry
 * `sp` (r or w) and `sig`, an HMAC over the permission and the blob path.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** One cache scope of a runtime token. Permission bits: 1 read, 2 write (3 both). */
export interface Scope {
  scope: string;
  permission: number;
}

export const READ = 1;
export const WRITE = 2;

export const DEFAULT_SCOPES: readonly Scope[] = [{ scope: 'refs/heads/main', permission: 3 }];

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function hmac(secret: Buffer, data: string): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function mintToken(secret: Buffer, scopes: readonly Scope[]): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(
    JSON.stringify({
      iss: 'clyde-cache-loopback',
      iat: now,
      nbf: now,
      exp: now + 6 * 3600,
      scp: 'Actions.ExampleScope Actions.Results:run:job',
      ac: JSON.stringify(scopes.map((s) => ({ Scope: s.scope, Permission: s.permission }))),
    }),
  );
  const sig = hmac(secret, `${header}.${payload}`).toString('base64url');
  return `${header}.${payload}.${sig}`;
}

/**
 * The scopes of a token this service minted, in the token's order; undefined when the token is
 * malformed, forged (bad signature) or its `ac` claim is unreadable.
 */
export function verifyToken(secret: Buffer, token: string): Scope[] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [header, payload, sig] = parts as [string, string, string];
  if (!sameBytes(Buffer.from(sig, 'base64url'), hmac(secret, `${header}.${payload}`))) {
    return undefined;
  }
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      ac?: unknown;
    };
    if (typeof claims.ac !== 'string') return undefined;
    const ac = JSON.parse(claims.ac) as unknown;
    if (!Array.isArray(ac)) return undefined;
    const scopes: Scope[] = [];
    for (const item of ac as unknown[]) {
      const s = item as { Scope?: unknown; Permission?: unknown };
      if (typeof s.Scope !== 'string' || typeof s.Permission !== 'number') return undefined;
      scopes.push({ scope: s.Scope, permission: s.Permission });
    }
    return scopes;
  } catch {
    return undefined;
  }
}

export type UrlPermission = 'r' | 'w';

export function signUrl(secret: Buffer, base: string, blobPath: string, sp: UrlPermission): string {
  const sig = hmac(secret, `${sp}:${blobPath}`).toString('base64url');
  return new URL(`${blobPath}?sv=2024-11-04&sp=${sp}&sig=${sig}`, base).href;
}

/** True when `url` carries a valid signature granting `need` on its own path. */
export function checkSignedUrl(secret: Buffer, url: URL, need: UrlPermission): boolean {
  const sp = url.searchParams.get('sp');
  const sig = url.searchParams.get('sig');
  if (sp !== need || sig === null) return false;
  return sameBytes(Buffer.from(sig, 'base64url'), hmac(secret, `${sp}:${url.pathname}`));
}
