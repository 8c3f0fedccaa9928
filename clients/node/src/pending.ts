// The table of requests that have not been answered yet, keyed by request id.

export type ServerResponse = { [member: string]: unknown };

export interface PendingRequest {
    readonly id: string;
    /** The complete text frame to send. */
    readonly frame: string;
    /** True once the frame was handed to an open socket. */
    sent: boolean;
    /**
     * Stops the request's timeout, if it has one. A function rather than the timer's handle, whose
     * type differs between runtimes: the declarations must not depend on DOM or Node.js types.
     */
    cancelTimer: (() => void) | undefined;
    resolve(response: ServerResponse): void;
    reject(error: Error): void;
}

export class PendingRequests {
    private readonly entries = new Map<string, PendingRequest>();

    add(request: PendingRequest): void {
        this.entries.set(request.id, request);
    }

    /** Removes the request and stops its timer; undefined when it is not (or no longer) pending. */
    take(id: string): PendingRequest | undefined {
        const request = this.entries.get(id);
        if (request === undefined) return undefined;
        this.entries.delete(id);
        request.cancelTimer?.();
        return request;
    }

    /** Requests not yet sent, in the order they were made. */
    unsent(): PendingRequest[] {
        return [...this.entries.values()].filter((request) => !request.sent);
    }

    /** Rejects every request that matches `which` with a fresh Error per request. */
    rejectWhere(which: (request: PendingRequest) => boolean, message: string, cause?: unknown): void {
        this.rejectWith(which, () => (cause === undefined ? new Error(message) : new Error(message, { cause })));
    }

    /** Rejects every request that matches `which` with the error `make` returns for it. */
    rejectWith(which: (request: PendingRequest) => boolean, make: () => Error): void {
        for (const request of [...this.entries.values()]) {
            if (!which(request)) continue;
            this.take(request.id);
            request.reject(make());
        }
    }

    rejectAll(message: string, cause?: unknown): void {
        this.rejectWhere(() => true, message, cause);
    }

    get size(): number {
        return this.entries.size;
    }
}
