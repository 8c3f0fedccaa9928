// Waiting for conditions instead of sleeping.

/** Polls `condition` until it returns a truthy value; fails after `timeoutMs`. */
export async function waitFor<T>(
    condition: () => T | Promise<T>,
    what: string,
    timeoutMs = 5_000,
    intervalMs = 10,
): Promise<NonNullable<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await condition();
        if (value) return value as NonNullable<T>;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
}

/** Rejects if `promise` does not settle within `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs}ms`)), timeoutMs);
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

/** Settles to `{ ok, value | error }` so a test can inspect a rejection without try/catch. */
export async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error }> {
    try {
        return { ok: true, value: await promise };
    } catch (error) {
        return { ok: false, error: error as Error };
    }
}
