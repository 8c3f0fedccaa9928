// An in-process stand-in for a server, plugged into the client through the `webSocketImpl`
// option. Used for behaviour that a real server cannot be made to show on demand
// (a missing answer, a lost `ready`, exact payload shapes).

import type { WebSocketConstructorLike, WebSocketLike } from "../../dist/index.js";

export interface SentFrame {
    id: string;
    type: string;
    data: string;
    payload: unknown;
}

type Listener = (event: any) => void;

export class FakeSocket implements WebSocketLike {
    readyState = 0;
    readonly sent: SentFrame[] = [];
    protected readonly listeners = new Map<string, Listener[]>();

    constructor(
        readonly url: string,
        private readonly server: FakeServer,
    ) {}

    addEventListener(type: string, listener: Listener): void {
        this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
    }

    protected emit(type: string, event: unknown): void {
        for (const listener of this.listeners.get(type) ?? []) listener(event);
    }

    send(data: string): void {
        if (this.readyState !== 1) throw new Error("InvalidStateError: socket not open");
        const frame = JSON.parse(data) as SentFrame;
        frame.payload = JSON.parse(frame.data);
        this.sent.push(frame);
        this.server.frames.push(frame);
        this.server.onFrame(this, frame);
    }

    close(code = 1000, reason = ""): void {
        if (this.readyState >= 2) return;
        this.readyState = 2;
        setTimeout(() => this.finish(code, reason), 0);
    }

    // Server side --------------------------------------------------------------------------

    open(): void {
        this.readyState = 1;
        this.emit("open", {});
    }

    deliver(message: unknown): void {
        if (this.readyState !== 1) return;
        const text = typeof message === "string" ? message : JSON.stringify(message);
        setTimeout(() => this.emit("message", { data: text }), 0);
    }

    /** The server closes the connection (or the network drops it, with 1006). */
    serverClose(code: number, reason = ""): void {
        if (this.readyState === 3) return;
        if (code === 1006) this.emit("error", { message: "connection reset" });
        this.finish(code, reason);
    }

    failWithoutClose(): void {
        this.emit("error", { message: "Received network error or non-101 status code." });
    }

    private finish(code: number, reason: string): void {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.emit("close", { code, reason });
    }
}

/**
 * A socket that also has the ping surface of the `ws` package: `ping()`, `on("pong" | "ping")`
 * and `terminate()`. The server answers pings with a pong while `answersPings` is set.
 */
export class PingingFakeSocket extends FakeSocket {
    pings = 0;
    answersPings = true;
    terminated = false;

    ping(): void {
        if (this.readyState !== 1) throw new Error("WebSocket is not open");
        this.pings++;
        if (this.answersPings) setTimeout(() => this.emit("pong", {}), 0);
    }

    on(type: string, listener: Listener): void {
        this.addEventListener(type, listener);
    }

    /** The server pings the client (the client's library answers by itself). */
    serverPing(): void {
        if (this.readyState === 1) this.emit("ping", {});
    }

    terminate(): void {
        this.terminated = true;
        this.serverClose(1006);
    }
}

/**
 * "ready": sends `ready`; "silent": never answers; "error-only": an error event and no close
 * (as Node.js 20's WebSocket does for a refused TCP connection); or a close before `ready`.
 */
export type ConnectBehaviour = "ready" | "silent" | "error-only" | { close: number; reason?: string };

export class FakeServer {
    readonly sockets: FakeSocket[] = [];
    readonly frames: SentFrame[] = [];
    /** What each new connection does; the default is to send `ready`. */
    nextConnections: ConnectBehaviour[] = [];
    defaultConnection: ConnectBehaviour = "ready";
    /** Answers a request; the default echoes `{id}`. Override per test. */
    respond: (frame: SentFrame) => unknown = (frame) => ({ id: frame.id });
    /** Whether sockets have the `ws` package's ping surface (PingingFakeSocket). */
    pinging = false;

    onFrame(socket: FakeSocket, frame: SentFrame): void {
        const answer = this.respond(frame);
        if (answer !== undefined) socket.deliver(answer);
    }

    get constructorFn(): WebSocketConstructorLike {
        const server = this;
        return class {
            constructor(url: string) {
                const socket = server.pinging ? new PingingFakeSocket(url, server) : new FakeSocket(url, server);
                server.sockets.push(socket);
                const behaviour = server.nextConnections.shift() ?? server.defaultConnection;
                setTimeout(() => {
                    if (socket.readyState !== 0) return;
                    if (behaviour === "ready") {
                        socket.open();
                        socket.deliver({ type: "ready", message: "Authentication successful" });
                    } else if (behaviour === "error-only") {
                        socket.failWithoutClose();
                    } else if (behaviour !== "silent") {
                        socket.open();
                        socket.serverClose(behaviour.close, behaviour.reason ?? "");
                    }
                }, 0);
                return socket;
            }
        } as unknown as WebSocketConstructorLike;
    }

    get last(): FakeSocket {
        return this.sockets[this.sockets.length - 1]!;
    }
}
