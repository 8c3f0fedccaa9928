// Constructor options (those of the official SDK) and their defaults.

import type { HandlerErrorListener } from "./subscriptions.js";
import type { WebSocketConstructorLike } from "./websocket.js";

export interface FluxionDBClientOptions {
    /** Server URL, e.g. `ws://localhost:8080`. */
    url: string;
    /** API key, sent as the `api-key` query parameter. Never logged. */
    apiKey: string;
    /** Log connection progress to the console. Default `false`. */
    showLogs?: boolean;
    /** Label shown by `getConnections()`, sent as `name` when non-empty. */
    connectionName?: string;
    /** Retries after a failed connection attempt or a lost connection. Default `5`. */
    maxReconnectAttempts?: number;
    /** Base retry delay in ms; the n-th retry waits `n × reconnectInterval`. Default `5000`. */
    reconnectInterval?: number;
    /** How long one connection attempt may wait for the server's `ready` frame, in ms. Default `10000`. */
    connectTimeout?: number;
    /** Per-request timeout in ms; `0` (the default) means none. */
    requestTimeout?: number;
    /**
     * Liveness watchdog: after this many ms without anything received from the server, the client
     * sends it a keep-alive probe (a WebSocket ping when the socket offers `ping()`, as `ws` does;
     * else a tiny `gval` request, since the standard WebSocket API cannot send pings). Default
     * `15000`; `0` disables the watchdog.
     */
    keepAliveInterval?: number;
    /**
     * How long after a keep-alive probe, in ms, the client waits for anything at all from the
     * server before it treats the connection as lost: it closes it, rejects the requests in flight
     * (`ConnectionClosedError`, code 1006) and reconnects, resuming subscriptions. Default `10000`.
     */
    keepAliveTimeout?: number;
    /**
     * WebSocket constructor to use instead of the runtime's global `WebSocket`
     * (for runtimes without one, e.g. Node.js < 22: `webSocketImpl: WebSocket` from the `ws` package).
     */
    webSocketImpl?: WebSocketConstructorLike;
    /**
     * Receives what a subscription handler threw, or the reason the promise it returned rejected,
     * with the event and the subscription (which keeps delivering). Without it, such an error is
     * rethrown as an uncaught exception, as an event listener's would be (in Node.js that ends the
     * process unless an `uncaughtException` listener handles it).
     */
    onHandlerError?: HandlerErrorListener;
}

export interface ResolvedOptions {
    url: string;
    apiKey: string;
    showLogs: boolean;
    connectionName: string;
    maxReconnectAttempts: number;
    reconnectInterval: number;
    connectTimeout: number;
    requestTimeout: number;
    keepAliveInterval: number;
    keepAliveTimeout: number;
    webSocketImpl: WebSocketConstructorLike | undefined;
    onHandlerError: HandlerErrorListener | undefined;
}

function nonNegative(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function positive(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

export function resolveOptions(options: FluxionDBClientOptions): ResolvedOptions {
    return {
        url: options.url,
        apiKey: options.apiKey,
        showLogs: options.showLogs === true,
        connectionName: options.connectionName ?? "",
        maxReconnectAttempts: Math.floor(nonNegative(options.maxReconnectAttempts, 5)),
        reconnectInterval: nonNegative(options.reconnectInterval, 5000),
        connectTimeout: nonNegative(options.connectTimeout, 10000),
        requestTimeout: nonNegative(options.requestTimeout, 0),
        keepAliveInterval: nonNegative(options.keepAliveInterval, 15000),
        keepAliveTimeout: positive(options.keepAliveTimeout, 10000),
        webSocketImpl: options.webSocketImpl,
        onHandlerError: options.onHandlerError,
    };
}
