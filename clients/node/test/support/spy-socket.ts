// The runtime's WebSocket, recording what crosses it: a real socket whose traffic a test can
// inspect (the frames the client sent, the pushes it received), plugged in with `webSocketImpl`.

import type { WebSocketConstructorLike } from "../../dist/index.js";

export interface WireLog {
    /** Every request frame sent, parsed, with its payload parsed, in order. */
    readonly sent: { id: string; type: string; payload: { [member: string]: unknown } }[];
    /** Every push (frame without `id`) received, parsed, in order. */
    readonly pushes: { [member: string]: unknown }[];
}

export function spySocket(): { impl: WebSocketConstructorLike; wire: WireLog } {
    const wire: WireLog = { sent: [], pushes: [] };
    class SpyWebSocket extends WebSocket {
        constructor(url: string) {
            super(url);
            this.addEventListener("message", (event) => {
                if (typeof event.data !== "string") return;
                const frame = JSON.parse(event.data) as { [member: string]: unknown };
                if (frame.id === undefined && frame.type !== "ready") wire.pushes.push(frame);
            });
        }

        override send(data: string): void {
            super.send(data);
            const frame = JSON.parse(data) as { id: string; type: string; data: string };
            wire.sent.push({ id: frame.id, type: frame.type, payload: JSON.parse(frame.data) });
        }
    }
    return { impl: SpyWebSocket as unknown as WebSocketConstructorLike, wire };
}
