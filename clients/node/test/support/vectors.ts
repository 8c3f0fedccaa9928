// Replays the cases of the repository's tests/vectors/protocol.json (format: tests/vectors/README.md)
// against a server, frame by frame.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WebSocketFrames, type Frame, type FrameConnection } from "./frames.js";
import { isObject, parseJson, show, JsonNumber, type Json } from "./json.js";
import { mismatch } from "./match.js";
import { RawFrames } from "./raw-frames.js";

export interface VectorCase {
    name: string;
    title: string;
    connections: { [name: string]: { path: string; query: string | null } };
    steps: Step[];
}

interface Step {
    open?: string;
    conn?: string;
    send?: string;
    send_frame?: { opcode: "text" | "binary"; hex?: string; fill?: string; length?: JsonNumber };
    close?: string;
    expect?: Json;
}

export interface VectorFile {
    master_key: string;
    cases: VectorCase[];
}

/** $FLUXIONDB_VECTORS, else <repo>/tests/vectors/protocol.json (this file runs from clients/node/dist-test/support/). */
export function vectorsPath(): string {
    const fromEnv = process.env.FLUXIONDB_VECTORS;
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    return fileURLToPath(new URL("../../../../tests/vectors/protocol.json", import.meta.url));
}

/** Reads the vectors file; a missing or unreadable file is an error naming it, never a skip. */
export function loadVectors(): VectorFile {
    const path = vectorsPath();
    let text: string;
    try {
        text = readFileSync(path, "utf8");
    } catch (error) {
        throw new Error(`cannot read the protocol vectors at ${path}: ${(error as Error).message}`);
    }
    return parseJson(text) as unknown as VectorFile;
}

function frameBytes(frame: NonNullable<Step["send_frame"]>): Uint8Array {
    if (frame.hex !== undefined) return Buffer.from(frame.hex, "hex");
    const length = Number(frame.length!.text);
    return Buffer.from(frame.fill!.repeat(length), "utf8");
}

function isValidUtf8(bytes: Uint8Array): boolean {
    try {
        new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        return true;
    } catch {
        return false;
    }
}

/** Connections that must send a text frame the WebSocket API cannot express. */
function connectionsNeedingRawFrames(testCase: VectorCase): Set<string> {
    const raw = new Set<string>();
    for (const step of testCase.steps) {
        const frame = step.send_frame;
        if (frame && frame.opcode === "text" && !isValidUtf8(frameBytes(frame))) raw.add(step.conn!);
    }
    return raw;
}

function describeFrame(frame: Frame): string {
    if (frame.kind === "text") return frame.text.length > 300 ? `${frame.text.slice(0, 300)}…` : frame.text;
    if (frame.kind === "binary") return `binary frame of ${frame.bytes.length} bytes`;
    return `close ${frame.code} "${frame.reason}"`;
}

/** Undefined when the frame matches the expectation, else what differs. */
export function frameMismatch(expected: Json, frame: Frame): string | undefined {
    if (isObject(expected) && "$close" in expected) {
        const close = expected.$close as { code: JsonNumber; reason?: string };
        if (frame.kind !== "close") return `expected close ${close.code.text}, got ${describeFrame(frame)}`;
        if (frame.code !== close.code.value || (close.reason !== undefined && frame.reason !== close.reason)) {
            return `expected close ${close.code.text} "${close.reason ?? "(any reason)"}", got ${describeFrame(frame)}`;
        }
        return undefined;
    }
    if (frame.kind !== "text") return `expected ${show(expected)}, got ${describeFrame(frame)}`;
    let actual: Json;
    try {
        actual = parseJson(frame.text);
    } catch {
        return `expected ${show(expected)}, got a frame that is not JSON: ${describeFrame(frame)}`;
    }
    return mismatch(expected, actual);
}

/** Runs every step; throws at the first mismatch with the step index and the JSON path. */
export async function replayCase(testCase: VectorCase, port: number, readTimeoutMs = 5_000): Promise<void> {
    const connections = new Map<string, FrameConnection>();
    const raw = connectionsNeedingRawFrames(testCase);
    const connection = (name: string): FrameConnection => {
        const found = connections.get(name);
        if (found === undefined) throw new Error(`connection ${name} used before it was opened`);
        return found;
    };
    try {
        for (const [index, step] of testCase.steps.entries()) {
            const where = `${testCase.name} step ${index}`;
            let target: FrameConnection;
            if (step.open !== undefined) {
                const spec = testCase.connections[step.open]!;
                const pathAndQuery = spec.query === null ? spec.path : `${spec.path}?${spec.query}`;
                target = raw.has(step.open)
                    ? new RawFrames(port, pathAndQuery)
                    : new WebSocketFrames(`ws://127.0.0.1:${port}${pathAndQuery}`);
                connections.get(step.open)?.terminate();
                connections.set(step.open, target);
            } else if (step.close !== undefined) {
                await connection(step.close).close(readTimeoutMs);
                continue;
            } else {
                target = connection(step.conn!);
                if (step.send !== undefined) target.sendText(step.send);
                if (step.send_frame !== undefined) target.sendBytes(step.send_frame.opcode, frameBytes(step.send_frame));
            }
            if (step.expect === undefined) continue;
            let frame: Frame;
            try {
                frame = await target.next(readTimeoutMs);
            } catch (error) {
                throw new Error(`${where}: ${(error as Error).message}; expected ${show(step.expect)}`);
            }
            const difference = frameMismatch(step.expect, frame);
            if (difference !== undefined) throw new Error(`${where}: ${difference}`);
        }
    } finally {
        for (const open of connections.values()) open.terminate();
    }
}
