// A connection that hands out received frames one by one, for replaying raw protocol steps.
// WebSocketFrames uses the runtime's global WebSocket — the transport the SDK uses.

export type Frame =
    | { kind: "text"; text: string }
    | { kind: "binary"; bytes: Uint8Array }
    | { kind: "close"; code: number; reason: string };

export interface FrameConnection {
    /** The next frame; after a close, the close frame again. Rejects after `timeoutMs`. */
    next(timeoutMs?: number): Promise<Frame>;
    sendText(text: string): void;
    /** Sends a frame with the given bytes as payload. */
    sendBytes(opcode: "text" | "binary", bytes: Uint8Array): void;
    /** Closes with code 1000 and waits for the server's close frame. */
    close(timeoutMs?: number): Promise<void>;
    /** Drops the connection without waiting (cleanup). */
    terminate(): void;
}

const DEFAULT_READ_TIMEOUT_MS = 5_000;

/** The queue of received frames shared by both connection kinds. */
export class FrameQueue {
    private readonly frames: Frame[] = [];
    private waiter: (() => void) | undefined;
    private closeFrame: Frame | undefined;

    push(frame: Frame): void {
        if (this.closeFrame !== undefined) return;
        if (frame.kind === "close") this.closeFrame = frame;
        this.frames.push(frame);
        this.waiter?.();
    }

    get closed(): boolean {
        return this.closeFrame !== undefined;
    }

    async next(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Frame> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const frame = this.frames.shift();
            if (frame !== undefined) return frame;
            if (this.closeFrame !== undefined) return this.closeFrame;
            const remaining = deadline - Date.now();
            if (remaining <= 0) throw new Error(`no frame within ${timeoutMs}ms`);
            await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, remaining);
                this.waiter = () => {
                    clearTimeout(timer);
                    resolve();
                };
            });
            this.waiter = undefined;
        }
    }

    /** Resolves once a close frame was received. */
    async untilClosed(timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        while (!this.closed) {
            const remaining = deadline - Date.now();
            if (remaining <= 0) throw new Error(`connection not closed within ${timeoutMs}ms`);
            await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, remaining);
                this.waiter = () => {
                    clearTimeout(timer);
                    resolve();
                };
            });
            this.waiter = undefined;
        }
    }
}

export class WebSocketFrames implements FrameConnection {
    private readonly queue = new FrameQueue();
    private readonly socket: WebSocket;

    constructor(url: string) {
        this.socket = new WebSocket(url);
        this.socket.binaryType = "arraybuffer";
        this.socket.addEventListener("message", (event) => {
            if (typeof event.data === "string") this.queue.push({ kind: "text", text: event.data });
            else this.queue.push({ kind: "binary", bytes: new Uint8Array(event.data as ArrayBuffer) });
        });
        this.socket.addEventListener("close", (event) => {
            this.queue.push({ kind: "close", code: event.code, reason: event.reason });
        });
    }

    next(timeoutMs?: number): Promise<Frame> {
        return this.queue.next(timeoutMs);
    }

    sendText(text: string): void {
        this.socket.send(text);
    }

    sendBytes(opcode: "text" | "binary", bytes: Uint8Array): void {
        if (opcode === "binary") {
            this.socket.send(bytes);
            return;
        }
        // Throws for bytes that are not UTF-8: the WebSocket API cannot send those (use RawFrames).
        this.socket.send(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    }

    async close(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<void> {
        if (!this.queue.closed) this.socket.close(1000);
        await this.queue.untilClosed(timeoutMs);
    }

    terminate(): void {
        if (!this.queue.closed) this.socket.close(1000);
    }
}
