/**
 * Runs `work` over `items`, at most `limit` at once. The first failure stops new work; the
 * items in flight finish (so nothing runs on after the caller cleans up), then it is thrown.
 */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const lanes = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, lane),
  );
  for (const r of lanes) if (r.status === 'rejected') throw r.reason;
}
