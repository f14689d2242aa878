/**
 * Polls `fn` until it returns a truthy value. `ms` only guards a hang (a
 * generous bound, never an assertion about speed); `what` names the
 * condition in the error.
 */
export async function until<T>(fn: () => Promise<T> | T, ms: number, what: string, stepMs = 500): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
