/**
 * Error policy (STYLE.md habit 4): only configuration errors fail a step. Everything else a cache
 * can throw (service down, corrupt entry, full disk, lock timeout, hostile entry) becomes one
 * warning and a miss. Errors are told apart by `.name`, which survives bundling.
 */

/** A bad input or workspace file: fails the step, names the input and the accepted form. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`Input '${input}': ${message}`);
  }
}

/** Something in the local store is wrong (corrupt blob, bad manifest, unsafe path, full disk). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/** An entry (local manifest or remote archive) tried to write outside its root or is malformed. */
export class UnsafeEntryError extends Error {
  override readonly name = 'UnsafeEntryError';
}

/** The runner cache service failed, refused, or sent something we will not trust. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
}

export function isInputError(err: unknown): err is InputError {
  return err instanceof Error && err.name === 'InputError';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
