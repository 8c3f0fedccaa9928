// close() must let the process exit even when the server stopped answering (a frozen process or
// VM) while a request was in flight: the close handshake cannot complete then, so the socket has
// to be torn down rather than left waiting for the server's close frame. Each case runs a client
// in a child process, which must exit by itself after close().

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { startServer } from "./support/server.js";
import { waitFor, within } from "./support/wait.js";

const DIST = new URL("../dist/index.js", import.meta.url).href;

/**
 * The child: connects, prints `ready`, and on SIGUSR2 (sent once the server is frozen) makes a
 * request; `request`: closes at once, the request still in flight; `watchdog`: waits until the
 * liveness watchdog gave the connection up (the request is rejected), then closes. Nothing else
 * keeps it alive: it exits once the client has released its sockets and timers.
 */
const CHILD = `
import { FluxionDBClient } from ${JSON.stringify(DIST)};
const [url, apiKey, mode] = process.argv.slice(-3);
const client = new FluxionDBClient({ url, apiKey, reconnectInterval: 50, connectTimeout: 300, keepAliveInterval: 200, keepAliveTimeout: 300 });
await client.connect();
process.once("SIGUSR2", async () => {
    const request = client.fetchCollections().then(() => "answered", (error) => "rejected: " + error.message);
    if (mode === "watchdog") console.log(await request);
    client.close();
    console.log("closed");
    if (mode === "request") console.log(await request);
});
console.log("ready");
`;

async function exitsAfterClose(mode: "request" | "watchdog"): Promise<string[]> {
    const server = await startServer();
    const child = spawn(process.execPath, ["--experimental-websocket", "--input-type=module", "-e", CHILD, "--", server.url, server.key, mode], {
        stdio: ["ignore", "pipe", "inherit"],
    });
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
        await waitFor(() => lines.includes("ready"), "the child's connection", 10_000);
        await server.pause();
        child.kill("SIGUSR2");
        const code = await within(exited, 10_000, "the child's exit after close()");
        assert.equal(code, 0);
        return lines;
    } finally {
        child.kill("SIGKILL");
        server.resume();
        await server.stop("SIGKILL");
    }
}

describe("close() with the server frozen", () => {
    it("lets the process exit with a request in flight", async () => {
        const lines = await exitsAfterClose("request");
        assert.deepEqual(lines, ["ready", "closed", "rejected: WebSocket connection closed."]);
    });

    it("lets the process exit after the keep-alive gave the frozen connection up", async () => {
        const lines = await exitsAfterClose("watchdog");
        assert.deepEqual(lines, [
            "ready",
            "rejected: WebSocket connection closed before response was received. (close 1006: keep-alive timed out)",
            "closed",
        ]);
    });
});
