// The smallest WebSocket surface the client needs. The runtime's global `WebSocket`
// (browsers, Bun, Deno, Node.js >= 22) satisfies it, and so do libraries such as `ws`.
// Declared here so the package's type declarations do not depend on the DOM library.

export interface WebSocketMessageEventLike {
    data: unknown;
}

export interface WebSocketCloseEventLike {
    code: number;
    reason: string;
}

/** `readyState` of a socket that can send (the WebSocket standard's OPEN). */
export const WS_OPEN = 1;
/** `readyState` of a socket whose connection is over (the WebSocket standard's CLOSED). */
const WS_CLOSED = 3;

export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    addEventListener(type: "open", listener: (event: unknown) => void): void;
    addEventListener(type: "message", listener: (event: WebSocketMessageEventLike) => void): void;
    addEventListener(type: "close", listener: (event: WebSocketCloseEventLike) => void): void;
    addEventListener(type: "error", listener: (event: unknown) => void): void;
}

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

/** The runtime's global WebSocket constructor, if it has one. */
export function globalWebSocket(): WebSocketConstructorLike | undefined {
    const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
    return typeof candidate === "function" ? (candidate as WebSocketConstructorLike) : undefined;
}

/** How long close() lets the server answer the close handshake before the socket is torn down. */
const CLOSE_GRACE_MS = 1_000;

/**
 * Ends the socket's TCP connection at once, without waiting for the server: `terminate()` where
 * the socket has it (the `ws` package); on Node.js's built-in WebSocket (undici), which has no
 * such method, by destroying the TCP socket it keeps under its `response` symbol. Best effort:
 * false when neither is found (another runtime, or a Node.js version that hides it).
 */
export function tearDown(socket: WebSocketLike): boolean {
    try {
        const terminate = (socket as { terminate?: unknown }).terminate;
        if (typeof terminate === "function") {
            (terminate as () => void).call(socket);
            return true;
        }
        for (const symbol of Object.getOwnPropertySymbols(socket)) {
            if (symbol.description !== "response") continue;
            const tcp = (socket as unknown as Record<symbol, { socket?: { destroy?: unknown } } | undefined>)[symbol]?.socket;
            if (tcp !== undefined && typeof tcp.destroy === "function") {
                (tcp.destroy as () => void).call(tcp);
                return true;
            }
        }
    } catch {
        // Not a socket of a known shape: nothing more can be done.
    }
    return false;
}

/**
 * Closes the socket with 1000; should the close handshake not be over within CLOSE_GRACE_MS (a
 * server that stopped answering), tears it down, so that it keeps neither a connection nor the
 * process alive. The grace timer itself does not keep the process alive.
 */
export function closeSocket(socket: WebSocketLike): void {
    try {
        socket.close(1000);
    } catch {
        // Already closing.
    }
    if (socket.readyState === WS_CLOSED) return;
    const timer = setTimeout(() => {
        if (socket.readyState !== WS_CLOSED) tearDown(socket);
    }, CLOSE_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
}
