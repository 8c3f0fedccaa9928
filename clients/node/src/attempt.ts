// One connection attempt: open a socket and wait for the server's `ready` frame.

import { ConnectError, isRefusal } from "./errors.js";
import { closeSocket, type WebSocketConstructorLike, type WebSocketLike } from "./websocket.js";

export interface LiveSocketHandlers {
    /** Called synchronously when `ready` arrives, before `Attempt.ready` resolves. */
    onReady(socket: WebSocketLike): void;
    /** A text frame received after `ready`. */
    onText(text: string): void;
    /** The socket closed after `ready`. */
    onClose(code: number, reason: string): void;
}

export interface Attempt {
    /** Resolves with the socket once `ready` arrived; rejects with a ConnectError. */
    readonly ready: Promise<WebSocketLike>;
    /** Abandons the attempt: rejects `ready` with `error` and closes the socket. */
    cancel(error: ConnectError): void;
}

function isReadyFrame(text: string): boolean | "invalid" {
    try {
        const frame: unknown = JSON.parse(text);
        return typeof frame === "object" && frame !== null && (frame as { type?: unknown }).type === "ready";
    } catch {
        return "invalid";
    }
}

function describeErrorEvent(event: unknown): string {
    const message = (event as { message?: unknown } | null)?.message;
    return typeof message === "string" && message !== "" ? `WebSocket error: ${message}` : "WebSocket error";
}

export function startAttempt(
    WebSocketImpl: WebSocketConstructorLike,
    url: string,
    connectTimeout: number,
    handlers: LiveSocketHandlers,
): Attempt {
    let settled = false;
    let isReady = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let socket: WebSocketLike | undefined;
    let resolveReady!: (socket: WebSocketLike) => void;
    let rejectReady!: (error: ConnectError) => void;
    const ready = new Promise<WebSocketLike>((resolve, reject) => {
        resolveReady = resolve;
        rejectReady = reject;
    });

    const fail = (error: ConnectError): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        if (socket !== undefined) closeSocket(socket);
        rejectReady(error);
    };

    try {
        socket = new WebSocketImpl(url);
    } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        fail(new ConnectError(`Cannot open WebSocket: ${message}`, false, { cause: error }));
        return { ready, cancel() {} };
    }
    const ws = socket;

    ws.addEventListener("message", (event) => {
        if (typeof event.data !== "string") return; // the protocol uses text frames only
        if (isReady) {
            handlers.onText(event.data);
            return;
        }
        if (settled) return;
        const verdict = isReadyFrame(event.data);
        if (verdict === "invalid") {
            fail(new ConnectError("First frame from the server is not JSON.", true));
        } else if (verdict) {
            isReady = true;
            settled = true;
            if (timer !== undefined) clearTimeout(timer);
            handlers.onReady(ws);
            resolveReady(ws);
        }
        // Other JSON frames before `ready` cannot answer anything yet: ignored.
    });

    // An `error` event is normally followed by `close`, which may carry the server's reason;
    // but some implementations (Node.js 20's) never fire `close` for a refused TCP connection.
    // So the error fails the attempt one task later unless a `close` has decided it by then.
    let errorText: string | undefined;
    ws.addEventListener("error", (event) => {
        if (isReady || settled || errorText !== undefined) return;
        const text = describeErrorEvent(event);
        errorText = text;
        setTimeout(() => fail(new ConnectError(text, true)), 0);
    });

    ws.addEventListener("close", (event) => {
        if (isReady) {
            handlers.onClose(event.code, event.reason);
            return;
        }
        if (isRefusal(event.code)) {
            const reason = event.reason !== "" ? event.reason : "no reason";
            fail(new ConnectError(`Authentication failed: ${reason}`, false));
        } else if (event.reason !== "") {
            fail(new ConnectError(`WebSocket closed before ready: ${event.reason}`, true));
        } else {
            fail(new ConnectError(errorText ?? `WebSocket closed before ready: code ${event.code}`, true));
        }
    });

    if (connectTimeout > 0) {
        timer = setTimeout(() => {
            fail(new ConnectError(`WebSocket ready timeout after ${connectTimeout}ms.`, true));
        }, connectTimeout);
    }

    return { ready, cancel: fail };
}
