// A minimal WebSocket client over a plain TCP socket, for the one kind of frame the
// WebSocket API cannot produce: a text frame whose payload is not valid UTF-8 (vector E-17).

import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { FrameQueue, type Frame, type FrameConnection } from "./frames.js";

const OPCODES = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export class RawFrames implements FrameConnection {
    private readonly queue = new FrameQueue();
    private readonly socket: Socket;
    private buffer = Buffer.alloc(0);
    private upgraded = false;
    private fragments: Buffer[] = [];
    private fragmentOpcode = 0;

    constructor(port: number, pathAndQuery: string) {
        this.socket = connect({ host: "127.0.0.1", port });
        const key = randomBytes(16).toString("base64");
        this.socket.write(
            `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
                `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        this.socket.on("data", (chunk: Buffer) => {
            this.buffer = Buffer.concat([this.buffer, chunk]);
            this.drain();
        });
        const lost = (): void => this.queue.push({ kind: "close", code: 1006, reason: "" });
        this.socket.on("close", lost);
        this.socket.on("error", lost);
    }

    private drain(): void {
        if (!this.upgraded) {
            const end = this.buffer.indexOf("\r\n\r\n");
            if (end < 0) return;
            const head = this.buffer.subarray(0, end).toString("latin1");
            this.buffer = this.buffer.subarray(end + 4);
            if (!/^HTTP\/1\.1 101/.test(head)) {
                this.queue.push({ kind: "close", code: 1006, reason: `upgrade refused: ${head.split("\r\n")[0]}` });
                this.socket.destroy();
                return;
            }
            this.upgraded = true;
        }
        for (;;) {
            if (this.buffer.length < 2) return;
            const first = this.buffer[0]!;
            const second = this.buffer[1]!;
            let length = second & 0x7f;
            let offset = 2;
            if (length === 126) {
                if (this.buffer.length < 4) return;
                length = this.buffer.readUInt16BE(2);
                offset = 4;
            } else if (length === 127) {
                if (this.buffer.length < 10) return;
                length = Number(this.buffer.readBigUInt64BE(2));
                offset = 10;
            }
            const masked = (second & 0x80) !== 0;
            const maskAt = offset;
            if (masked) offset += 4;
            if (this.buffer.length < offset + length) return;
            const payload = Buffer.from(this.buffer.subarray(offset, offset + length));
            if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= this.buffer[maskAt + (i % 4)]!;
            this.buffer = this.buffer.subarray(offset + length);
            this.onFrame((first & 0x80) !== 0, first & 0x0f, payload);
        }
    }

    private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
        if (opcode === OPCODES.ping) {
            this.writeFrame(OPCODES.pong, payload);
        } else if (opcode === OPCODES.close) {
            const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
            const reason = payload.length > 2 ? payload.subarray(2).toString("utf8") : "";
            this.queue.push({ kind: "close", code, reason });
            this.writeFrame(OPCODES.close, payload.subarray(0, 2));
            this.socket.end();
        } else if (opcode === OPCODES.text || opcode === OPCODES.binary || opcode === OPCODES.continuation) {
            if (opcode !== OPCODES.continuation) this.fragmentOpcode = opcode;
            this.fragments.push(payload);
            if (!fin) return;
            const whole = Buffer.concat(this.fragments);
            this.fragments = [];
            this.queue.push(
                this.fragmentOpcode === OPCODES.text
                    ? { kind: "text", text: whole.toString("utf8") }
                    : { kind: "binary", bytes: new Uint8Array(whole) },
            );
        }
    }

    private writeFrame(opcode: number, payload: Uint8Array): void {
        if (this.socket.destroyed) return;
        const length = payload.length;
        const header =
            length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
        header[0] = 0x80 | opcode;
        if (length < 126) {
            header[1] = 0x80 | length;
        } else if (length < 65536) {
            header[1] = 0x80 | 126;
            header.writeUInt16BE(length, 2);
        } else {
            header[1] = 0x80 | 127;
            header.writeBigUInt64BE(BigInt(length), 2);
        }
        const mask = randomBytes(4);
        const body = Buffer.from(payload);
        for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!;
        this.socket.write(Buffer.concat([header, mask, body]));
    }

    next(timeoutMs?: number): Promise<Frame> {
        return this.queue.next(timeoutMs);
    }

    sendText(text: string): void {
        this.writeFrame(OPCODES.text, Buffer.from(text, "utf8"));
    }

    sendBytes(opcode: "text" | "binary", bytes: Uint8Array): void {
        this.writeFrame(OPCODES[opcode], bytes);
    }

    async close(timeoutMs = 5_000): Promise<void> {
        if (!this.queue.closed) {
            const code = Buffer.alloc(2);
            code.writeUInt16BE(1000);
            this.writeFrame(OPCODES.close, code);
        }
        await this.queue.untilClosed(timeoutMs);
    }

    terminate(): void {
        this.socket.destroy();
    }
}
