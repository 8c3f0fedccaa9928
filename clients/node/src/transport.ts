// Connection management: one socket at a time, a queue of requests, matching of answers
// to requests by id, reconnection with linear back-off, and settling of every request
// when its connection is lost or the client is closed.

import { startAttempt, type Attempt } from "./attempt.js";
import {
    CLOSED_BY_CLIENT,
    ConnectError,
    ConnectionClosedError,
    KEEPALIVE_TIMED_OUT,
    LOST_BEFORE_RESPONSE,
    RECONNECT_EXHAUSTED,
    failedBeforeSending,
    requestTimedOut,
} from "./errors.js";
import { newRequestId } from "./ids.js";
import { LivenessWatchdog } from "./liveness.js";
import type { Logger } from "./logger.js";
import type { ResolvedOptions } from "./options.js";
import { PendingRequests, type PendingRequest, type ServerResponse } from "./pending.js";
import { buildConnectUrl, describeUrl } from "./url.js";
import { closeSocket, globalWebSocket, tearDown, WS_OPEN, type WebSocketLike } from "./websocket.js";

/**
 * The keep-alive request of a socket that cannot ping: `gval` of a key in a collection that need
 * not exist. Every server of the protocol knows `gval` (the upstream servers close the connection
 * on a type they do not know) and any key may read; the answer is `""`.
 */
const KEEPALIVE_PAYLOAD = JSON.stringify({ col: "fluxiondb.keepalive", key: "keepalive" });

/** A socket that can send WebSocket pings and report pongs, as the `ws` package's does. */
interface PingingSocket {
    ping(): void;
    on(event: "ping" | "pong", listener: () => void): void;
}

function canPing(socket: WebSocketLike): socket is WebSocketLike & PingingSocket {
    const candidate = socket as Partial<PingingSocket>;
    return typeof candidate.ping === "function" && typeof candidate.on === "function";
}

export interface RequestOptions {
    /**
     * Send only on this connection (a `connection` value): rejected at once, unsent, when it is
     * not the open one. Without it a request waits in the queue for the next connection.
     */
    connection?: number;
    /** Receives the answer should it arrive on the same connection after the request timed out. */
    onLate?: (response: ServerResponse) => void;
}

export class Transport {
    private readonly requests = new PendingRequests();
    private socket: WebSocketLike | null = null;
    private connecting: Promise<void> | null = null;
    /** Cancels the running attempt or back-off wait, if any. */
    private cancelStep: ((error: ConnectError) => void) | null = null;
    /** Retries made since the last successful `ready` (shared by connect and reconnect). */
    private retries = 0;
    /** Bumped by close(): anything started before belongs to an old generation. */
    private generation = 0;
    /** Whether a connection of this generation was ready before (the next one is a reconnect). */
    private wasReady = false;
    /** Counts the connections that became ready; the open one's number is `connection`. */
    private readyCount = 0;
    /** Handlers of late answers to timed-out requests of the open connection, by request id. */
    private late = new Map<string, (response: ServerResponse) => void>();
    /** The open connection's liveness watchdog, if enabled. */
    private watchdog: LivenessWatchdog | null = null;
    /** Ids of the open connection's keep-alive requests still unanswered. */
    private probes = new Set<string>();
    /** Receives frames without an id: pushes of live subscriptions. */
    onPush: ((frame: ServerResponse) => void) | null = null;
    /** Called once a connection that replaced a dropped one is ready. */
    onReconnect: (() => void) | null = null;
    /** Called when a ready connection dropped (before reconnecting). */
    onDrop: (() => void) | null = null;
    /** Called when reconnecting after a drop gave up (attempts exhausted, or the key refused). */
    onGiveUp: ((error: Error) => void) | null = null;

    constructor(
        private readonly options: ResolvedOptions,
        private readonly log: Logger,
    ) {}

    connect(): Promise<void> {
        if (this.socket !== null) return Promise.resolve();
        if (this.connecting !== null) return this.connecting;
        return this.startConnecting(false);
    }

    /** The number of the open connection (a new one after every reconnect); null while there is none. */
    get connection(): number | null {
        return this.socket !== null ? this.readyCount : null;
    }

    /** Sends one request (queued until the connection is ready) and resolves with the answer. */
    request(type: string, payload: unknown, options: RequestOptions = {}): Promise<ServerResponse> {
        if (options.connection !== undefined && (options.connection !== this.connection || !this.canSend())) {
            return Promise.reject(new Error(failedBeforeSending(new Error("its connection is closed"))));
        }
        let frame: string;
        const id = newRequestId();
        try {
            frame = JSON.stringify({ id, type, data: JSON.stringify(payload) });
        } catch (error) {
            return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
        return new Promise<ServerResponse>((resolve, reject) => {
            const request: PendingRequest = { id, frame, sent: false, cancelTimer: undefined, resolve, reject };
            const timeout = this.options.requestTimeout;
            if (timeout > 0) {
                const timer = setTimeout(() => {
                    if (this.requests.take(id) === undefined) return;
                    if (request.sent && options.onLate !== undefined) this.late.set(id, options.onLate);
                    reject(new Error(requestTimedOut(id, timeout)));
                }, timeout);
                request.cancelTimer = () => clearTimeout(timer);
            }
            this.requests.add(request);
            if (this.socket !== null) {
                // A socket that is closing (the server's close frame came, its close event has
                // not) would drop the frame without a word: the request waits for the next
                // connection, which that close event starts.
                if (this.canSend()) this.send(this.socket, request);
            } else {
                // A failed connection rejects the queued requests itself.
                this.connect().catch(() => {});
            }
        });
    }

    /** Closes the connection, stops reconnecting and rejects everything pending. Synchronous. */
    close(): void {
        this.generation++;
        this.wasReady = false;
        const cancel = this.cancelStep;
        this.cancelStep = null;
        this.connecting = null;
        this.retries = 0;
        const socket = this.socket;
        this.socket = null;
        this.late.clear();
        this.stopWatchdog();
        if (socket !== null) closeSocket(socket);
        if (cancel !== null) cancel(new ConnectError(CLOSED_BY_CLIENT, false));
        this.requests.rejectAll(CLOSED_BY_CLIENT);
    }

    private startConnecting(afterDrop: boolean): Promise<void> {
        const run = this.runConnectLoop(afterDrop, this.generation);
        const tracked = run.finally(() => {
            if (this.connecting === tracked) this.connecting = null;
        });
        this.connecting = tracked;
        // The loop settles its queued requests itself; this handle must never be an unhandled rejection.
        tracked.catch(() => {});
        return tracked;
    }

    private async runConnectLoop(afterDrop: boolean, generation: number): Promise<void> {
        const { maxReconnectAttempts, reconnectInterval } = this.options;
        let lastError: ConnectError | undefined;
        let mustWait = afterDrop;
        for (;;) {
            if (mustWait) {
                if (this.retries >= maxReconnectAttempts) {
                    const error = afterDrop
                        ? new ConnectError(RECONNECT_EXHAUSTED, false, { cause: lastError })
                        : (lastError ?? new ConnectError(RECONNECT_EXHAUSTED, false));
                    this.retries = 0; // a later call starts a fresh series of attempts
                    this.failQueued(error, afterDrop, generation);
                    this.gaveUp(error, generation);
                    throw error;
                }
                this.retries++;
                const delay = reconnectInterval * this.retries;
                this.log.info(`Reconnecting in ${delay}ms (attempt ${this.retries} of ${maxReconnectAttempts}).`);
                await this.wait(delay, generation);
            }
            try {
                const socket = await this.attemptOnce(generation);
                if (this.socket === socket) return; // installed by onReady and still open
                throw new ConnectError("WebSocket closed right after ready.", true);
            } catch (error) {
                const failure =
                    error instanceof ConnectError ? error : new ConnectError(String(error), true, { cause: error });
                if (generation !== this.generation) throw failure; // close() already settled everything
                this.log.warn(`Connection attempt failed: ${failure.message}`);
                if (!failure.retryable) {
                    this.retries = 0;
                    this.failQueued(failure, false, generation);
                    this.gaveUp(failure, generation);
                    throw failure;
                }
                lastError = failure;
                mustWait = true;
            }
        }
    }

    private failQueued(error: Error, exhausted: boolean, generation: number): void {
        if (generation !== this.generation) return;
        // This series is over: a request made from a rejection handler must start a new one,
        // not join the failed one.
        this.connecting = null;
        if (exhausted) this.requests.rejectAll(error.message, error.cause);
        else this.requests.rejectAll(failedBeforeSending(error), error);
    }

    /** No connection will come back by itself: a dropped one's dependents are told. */
    private gaveUp(error: Error, generation: number): void {
        if (generation !== this.generation || !this.wasReady) return;
        this.onGiveUp?.(error);
    }

    private wait(delay: number, generation: number): Promise<void> {
        if (generation !== this.generation) return Promise.reject(new ConnectError(CLOSED_BY_CLIENT, false));
        return new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.cancelStep = null;
                resolve();
            }, delay);
            this.cancelStep = (error) => {
                clearTimeout(timer);
                reject(error);
            };
        });
    }

    private attemptOnce(generation: number): Promise<WebSocketLike> {
        if (generation !== this.generation) return Promise.reject(new ConnectError(CLOSED_BY_CLIENT, false));
        const WebSocketImpl = this.options.webSocketImpl ?? globalWebSocket();
        if (WebSocketImpl === undefined) {
            return Promise.reject(
                new ConnectError(
                    "No WebSocket implementation: this runtime has no global WebSocket; pass the webSocketImpl option.",
                    false,
                ),
            );
        }
        let url: string;
        try {
            url = buildConnectUrl(this.options.url, this.options.apiKey, this.options.connectionName);
        } catch (error) {
            return Promise.reject(new ConnectError(`Invalid URL: ${this.options.url}`, false, { cause: error }));
        }
        this.log.info(`Connecting to ${describeUrl(this.options.url)}`);
        let socket: WebSocketLike | undefined;
        const attempt: Attempt = startAttempt(WebSocketImpl, url, this.options.connectTimeout, {
            onReady: (ready) => {
                if (generation !== this.generation) return;
                socket = ready;
                this.cancelStep = null;
                this.retries = 0;
                this.socket = ready;
                this.readyCount++;
                this.log.info("Connected.");
                this.startWatchdog(ready);
                this.flushQueue(ready);
                const reconnect = this.wasReady;
                this.wasReady = true;
                if (reconnect && this.socket === ready) this.onReconnect?.();
            },
            onText: (text) => {
                if (socket !== undefined && this.socket === socket) {
                    this.watchdog?.seen();
                    this.handleText(text);
                }
            },
            onClose: (code, reason) => {
                if (socket !== undefined && this.socket === socket) this.handleDrop(code, reason);
            },
        });
        this.cancelStep = attempt.cancel;
        return attempt.ready.catch((error: unknown) => {
            if (generation === this.generation) this.cancelStep = null;
            throw error;
        });
    }

    /** Whether the connection can take a frame now: open, not closing. */
    private canSend(): boolean {
        return this.socket !== null && this.socket.readyState === WS_OPEN;
    }

    private flushQueue(socket: WebSocketLike): void {
        for (const request of this.requests.unsent()) {
            if (this.socket !== socket) return;
            this.send(socket, request);
        }
    }

    private send(socket: WebSocketLike, request: PendingRequest): void {
        request.sent = true;
        try {
            socket.send(request.frame);
        } catch (error) {
            if (this.requests.take(request.id) !== undefined) {
                request.reject(new Error(LOST_BEFORE_RESPONSE, { cause: error }));
            }
        }
    }

    private handleText(text: string): void {
        let frame: unknown;
        try {
            frame = JSON.parse(text);
        } catch {
            this.log.warn("Ignoring a frame that is not JSON.");
            return;
        }
        if (typeof frame !== "object" || frame === null || Array.isArray(frame)) {
            this.log.warn("Ignoring a frame that is not a JSON object.");
            return;
        }
        const response = frame as ServerResponse;
        if (typeof response.id === "string" && this.probes.delete(response.id)) return; // a keep-alive's answer
        if (typeof response.id !== "string") {
            if (this.onPush !== null && response.id === undefined) {
                this.onPush(response);
                return;
            }
            this.log.warn(`Server message without id: ${text}`);
            return;
        }
        const request = this.requests.take(response.id);
        if (request === undefined) {
            const late = this.late.get(response.id);
            if (late !== undefined) {
                this.late.delete(response.id);
                late(response);
                return;
            }
            this.log.warn(`Unexpected response for request ${response.id} (timed out or unknown).`);
            return;
        }
        request.resolve(response);
    }

    private startWatchdog(socket: WebSocketLike): void {
        this.stopWatchdog();
        const { keepAliveInterval, keepAliveTimeout } = this.options;
        if (keepAliveInterval <= 0) return;
        const watchdog = new LivenessWatchdog(keepAliveInterval, keepAliveTimeout, {
            probe: () => {
                if (this.socket === socket) this.probe(socket);
            },
            dead: () => {
                if (this.socket !== socket) return;
                this.log.warn(`Nothing received within ${keepAliveTimeout}ms of a keep-alive: the connection is lost.`);
                // The link is dead: its close event may come late or never, so this connection is
                // over now (and the close event, once it comes, is ignored).
                this.handleDrop(1006, KEEPALIVE_TIMED_OUT);
                // Nothing would answer a close handshake: the socket is torn down where possible.
                if (!tearDown(socket)) closeSocket(socket);
            },
        });
        this.watchdog = watchdog;
        if (canPing(socket)) {
            // Control frames are traffic too (the standard WebSocket API does not show them).
            socket.on("pong", () => watchdog.seen());
            socket.on("ping", () => watchdog.seen());
        }
    }

    private stopWatchdog(): void {
        this.watchdog?.stop();
        this.watchdog = null;
        this.probes.clear();
    }

    /** Sends a keep-alive the server answers at once: a ping frame if the socket can, else a `gval`. */
    private probe(socket: WebSocketLike): void {
        try {
            if (canPing(socket)) {
                socket.ping();
                return;
            }
            const id = newRequestId();
            socket.send(JSON.stringify({ id, type: "gval", data: KEEPALIVE_PAYLOAD }));
            this.probes.add(id);
        } catch {
            // A socket that cannot send is closing: its close event ends the connection.
        }
    }

    private handleDrop(code: number, reason: string): void {
        this.socket = null;
        this.late.clear();
        this.stopWatchdog();
        this.log.warn(`Connection lost (code ${code}${reason !== "" ? `, ${reason}` : ""}).`);
        this.requests.rejectWith((request) => request.sent, () => new ConnectionClosedError(code, reason));
        this.onDrop?.();
        if (this.connecting === null) this.startConnecting(true);
    }
}
