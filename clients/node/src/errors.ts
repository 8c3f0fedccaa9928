// Error messages of transport failures (the texts of the official SDK where it has one)
// and the error raised for a connection attempt that failed.

export const CLOSED_BY_CLIENT = "WebSocket connection closed.";
export const LOST_BEFORE_RESPONSE = "WebSocket connection closed before response was received.";
export const RECONNECT_EXHAUSTED = "WebSocket reconnect attempts exhausted.";
/** The reason of the ConnectionClosedError (code 1006) of a connection the liveness watchdog gave up. */
export const KEEPALIVE_TIMED_OUT = "keep-alive timed out";

export function failedBeforeSending(cause: Error): string {
    return `Failed to connect before sending: ${cause.message}`;
}

export function requestTimedOut(id: string, timeoutMs: number): string {
    return `Request ${id} timed out after ${timeoutMs}ms.`;
}

/**
 * A request whose connection closed before its answer arrived. `code` and `reason` are those of
 * the close (1006 and `""` when the connection was cut without a close frame; 1006 and
 * KEEPALIVE_TIMED_OUT when nothing arrived from the server in time after a keep-alive); the message is
 * LOST_BEFORE_RESPONSE, followed by `(close <code>: <reason>)` when the server gave a reason.
 */
export class ConnectionClosedError extends Error {
    readonly code: number;
    readonly reason: string;

    constructor(code: number, reason: string) {
        super(reason !== "" ? `${LOST_BEFORE_RESPONSE} (close ${code}: ${reason})` : LOST_BEFORE_RESPONSE);
        this.name = "Error";
        this.code = code;
        this.reason = reason;
    }
}

/** A failed connection attempt. `retryable` is false when retrying cannot help (refused key, bad URL, client closed). */
export class ConnectError extends Error {
    readonly retryable: boolean;

    constructor(message: string, retryable: boolean, options?: { cause?: unknown }) {
        super(message, options);
        this.name = "Error";
        this.retryable = retryable;
    }
}

/** Close codes after which a new attempt with the same key cannot succeed. */
export function isRefusal(code: number): boolean {
    return code === 1008;
}
