// A TCP proxy in front of the server whose connections the test can cut, to make a client
// reconnect while the server (and what it remembers) stays up. It forwards what the server sends
// frame by frame, so that it can also cut a connection right after a given push, or reorder a
// `sub` answer after the backlog it announces.

import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface CuttableProxy {
    /** ws://127.0.0.1:PORT of the proxy. */
    readonly url: string;
    /** How many connections the proxy accepted so far. */
    readonly connections: number;
    /** Drops every connection open through the proxy (both sides at once). */
    cut(): void;
    /**
     * Holds back what clients send, past each connection's first chunk (its upgrade request), so
     * that new connections still become ready while their requests wait in the proxy.
     */
    holdRequests(): void;
    /** Forwards what was held, in order, and stops holding. */
    releaseRequests(): void;
    /**
     * Once: drops the next connection that passes `n` `rec` pushes from the server, right after
     * forwarding the n-th (and nothing after it).
     */
    cutAfterRecs(n: number): void;
    /**
     * Forwards each `sub` answer that announces `"backlog":K` only after the K frames that follow
     * it: the backlog then arrives before its answer, an order the protocol allows.
     */
    answersAfterBacklog(): void;
    /** Removes `"backlog":K` from `sub` answers, as an older server sends them. */
    stripBacklog(): void;
    /**
     * Behaves as the upstream servers do with a message type they do not know (they know only
     * UPSTREAM_TYPES): instead of forwarding it, answers `{"error":"Unknown message type"}` without
     * an id, then closes the connection with 1008 `policy violation`. Counts them in `unknownTypes`.
     */
    actAsUpstream(): void;
    /** The types refused by actAsUpstream() so far. */
    readonly unknownTypes: string[];
    /**
     * Freezes every connection open now, as a half-open link (a NAT that dropped the flow, a pulled
     * cable, a frozen VM): nothing is forwarded any more in either direction and neither side is
     * closed or told, whatever it sends or closes. Connections made later are forwarded as usual.
     */
    freeze(): void;
    /**
     * Sends every client connected now a close frame (1001) as the server would, then freezes the
     * link (see `freeze`): the client is left closing, its close event not yet fired. Resolves once
     * each of those clients has answered with its own close frame.
     */
    closeFrameWithoutEnd(): Promise<void>;
    close(): Promise<void>;
}

/** The length of the WebSocket frame at the start of `buf` (server frames: unmasked), or 0 when incomplete. */
function frameLength(buf: Buffer): { header: number; total: number } | null {
    if (buf.length < 2) return null;
    let header = 2;
    let length = buf[1]! & 0x7f;
    if (length === 126) {
        if (buf.length < 4) return null;
        length = buf.readUInt16BE(2);
        header = 4;
    } else if (length === 127) {
        if (buf.length < 10) return null;
        length = Number(buf.readBigUInt64BE(2));
        header = 10;
    }
    if ((buf[1]! & 0x80) !== 0) header += 4;
    return buf.length < header + length ? null : { header, total: header + length };
}

/** An unmasked, final text frame holding `text`. */
function textFrame(text: string): Buffer {
    const payload = Buffer.from(text);
    let header: Buffer;
    if (payload.length < 126) {
        header = Buffer.from([0x81, payload.length]);
    } else if (payload.length < 65536) {
        header = Buffer.alloc(4);
        header[0] = 0x81;
        header[1] = 126;
        header.writeUInt16BE(payload.length, 2);
    } else {
        header = Buffer.alloc(10);
        header[0] = 0x81;
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    return Buffer.concat([header, payload]);
}

/** The message types the upstream servers know (PROTOCOL.md of the shared notes). */
export const UPSTREAM_TYPES = new Set([
    "ins", "qry", "cols", "qdoc", "ddoc", "dcol", "drec", "dmrec", "drrng",
    "sval", "gval", "gvalues", "rval", "gvals", "gkeys", "keys", "conn", "auth",
]);

/** The text of the client frame (masked) at the start of `buf` when it is a text frame. */
function clientText(frame: Buffer, header: number): string | undefined {
    if ((frame[0]! & 0x0f) !== 1 || (frame[1]! & 0x80) === 0) return undefined;
    const mask = frame.subarray(header - 4, header);
    const payload = Buffer.from(frame.subarray(header));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    return payload.toString();
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
    const open = new Set<Socket>();
    let holding = false;
    let cutAfter: number | null = null;
    let reorder = false;
    let strip = false;
    let upstreamOnly = false;
    const unknownTypes: string[] = [];
    const releases = new Set<() => void>();
    const links = new Set<{ frozen: boolean; client: Socket }>();
    let accepted = 0;
    const server: Server = createServer((client) => {
        accepted++;
        const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
        const link: { frozen: boolean; client: Socket } = { frozen: false, client };
        links.add(link);
        client.on("close", () => links.delete(link));
        for (const s of [client, upstream]) {
            open.add(s);
            s.on("close", () => open.delete(s));
            s.on("error", () => {});
        }
        let first = true;
        const held: Buffer[] = [];
        const release = () => {
            for (const chunk of held.splice(0)) upstream.write(chunk);
        };
        releases.add(release);
        client.on("close", () => releases.delete(release));
        let fromClient: Buffer = Buffer.alloc(0);
        let refused = false;
        client.on("data", (chunk: Buffer) => {
            if (link.frozen || refused) return;
            if (upstreamOnly && !first) {
                // Frame by frame: a frame of a type upstream does not know is refused as it would.
                fromClient = Buffer.concat([fromClient, chunk]);
                for (;;) {
                    const length = frameLength(fromClient);
                    if (length === null) break;
                    const frame = fromClient.subarray(0, length.total);
                    fromClient = fromClient.subarray(length.total);
                    const text = clientText(frame, length.header);
                    let type: unknown;
                    try {
                        type = text === undefined ? undefined : (JSON.parse(text) as { type?: unknown }).type;
                    } catch {
                        type = undefined;
                    }
                    if (typeof type === "string" && !UPSTREAM_TYPES.has(type)) {
                        unknownTypes.push(type);
                        refused = true;
                        client.write(textFrame('{"error":"Unknown message type"}'));
                        // Close 1008 "policy violation"; the client's end then ends the upstream side.
                        client.end(Buffer.concat([Buffer.from([0x88, 18, 0x03, 0xf0]), Buffer.from("policy violation")]));
                        return;
                    }
                    upstream.write(frame);
                }
                return;
            }
            if (holding && !first) held.push(chunk);
            else upstream.write(chunk);
            first = false;
        });
        // What the server sends: its upgrade answer as is, then frame by frame.
        let pending: Buffer = Buffer.alloc(0);
        let handshake = true;
        let recs = 0;
        let cutAt: number | null = null;
        let dropped = false;
        let heldAnswer: Buffer | null = null;
        let heldLeft = 0;
        const forward = (frame: Buffer, text: string | undefined) => {
            if (dropped) return;
            if (text !== undefined && text.startsWith('{"id":') && /"backlog":\d+/.test(text)) {
                if (strip) {
                    text = text.replace(/,"backlog":\d+/, "");
                    frame = textFrame(text);
                }
                const announced = Number(/"backlog":(\d+)/.exec(text)?.[1] ?? 0);
                if (reorder && announced > 0) {
                    heldAnswer = frame;
                    heldLeft = announced;
                    return;
                }
            }
            client.write(frame);
            if (heldAnswer !== null && text !== undefined && !text.startsWith('{"id":') && --heldLeft === 0) {
                client.write(heldAnswer);
                heldAnswer = null;
            }
            if (text !== undefined && text.startsWith('{"type":"rec"')) {
                recs++;
                if (cutAt === null && cutAfter !== null) {
                    cutAt = recs - 1 + cutAfter;
                    cutAfter = null;
                }
                if (cutAt !== null && recs >= cutAt) {
                    dropped = true;
                    client.end(); // after what was forwarded
                    upstream.destroy();
                }
            }
        };
        upstream.on("data", (chunk: Buffer) => {
            if (link.frozen) return;
            pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
            if (handshake) {
                const end = pending.indexOf("\r\n\r\n");
                if (end < 0) return;
                client.write(pending.subarray(0, end + 4));
                pending = pending.subarray(end + 4);
                handshake = false;
            }
            for (;;) {
                const length = frameLength(pending);
                if (length === null) break;
                const frame = pending.subarray(0, length.total);
                const opcode = frame[0]! & 0x0f;
                const text = opcode === 1 ? frame.subarray(length.header).toString() : undefined;
                pending = pending.subarray(length.total);
                forward(frame, text);
            }
        });
        client.on("close", () => {
            if (!link.frozen) upstream.destroy();
        });
        upstream.on("close", () => {
            if (!link.frozen) client.destroy();
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    return {
        url: `ws://127.0.0.1:${address.port}`,
        get connections() {
            return accepted;
        },
        cut() {
            for (const s of open) s.destroy();
        },
        holdRequests() {
            holding = true;
        },
        releaseRequests() {
            holding = false;
            for (const release of releases) release();
        },
        cutAfterRecs(n: number) {
            cutAfter = n;
        },
        answersAfterBacklog() {
            reorder = true;
        },
        stripBacklog() {
            strip = true;
        },
        actAsUpstream() {
            upstreamOnly = true;
        },
        get unknownTypes() {
            return unknownTypes;
        },
        freeze() {
            for (const link of links) link.frozen = true;
        },
        async closeFrameWithoutEnd() {
            const answers: Promise<void>[] = [];
            for (const link of links) {
                link.frozen = true;
                // The client's next bytes are its close frame (opcode 8, masked).
                answers.push(
                    new Promise<void>((resolve) => {
                        const onData = (chunk: Buffer) => {
                            if ((chunk[0]! & 0x0f) === 0x8) {
                                link.client.off("data", onData);
                                resolve();
                            }
                        };
                        link.client.on("data", onData);
                    }),
                );
                link.client.write(Buffer.from([0x88, 0x02, 0x03, 0xe9]));
            }
            await Promise.all(answers);
        },
        close() {
            for (const s of open) s.destroy();
            return new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}
