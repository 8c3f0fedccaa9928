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
