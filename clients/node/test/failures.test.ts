// Failure paths against the real server: invalid payloads, refused keys, a server killed
// mid-request, reconnection when it comes back on the same port, timeouts and close().

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FluxionDBClient, type ConnectionClosedError } from "../dist/index.js";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { startProxy } from "./support/proxy.js";
import { startServer } from "./support/server.js";
import { settle, waitFor, within } from "./support/wait.js";

const fixture = useServer();
forbidUnhandledRejections();

const LOST = "WebSocket connection closed before response was received.";

describe("server errors", () => {
    it("rejects invalid payloads with the server's text and keeps the connection", async () => {
        const client = fixture.client();
        await assert.rejects(client.insertSingleRecord({ ts: 0, doc: "d", data: "x", col: "f1.c" }), {
            message: "invalid payload: [0].ts must be a positive integer",
        });
        await assert.rejects(client.insertMultipleRecords([{ ts: 1, doc: "d", data: "x", col: "f1.c" }, { ts: 1, doc: "", data: "x", col: "f1.c" }]), {
            message: "invalid payload: [1].doc must be a non-empty string",
        });
        await assert.rejects(client.setValue({ col: "f1.c", key: "k", value: "" }), {
            message: "invalid payload: value must be a non-empty string",
        });
        await assert.rejects(client.fetchDocument({ col: "f1.c", doc: "d", from: 10, to: 5 }), {
            message: "invalid payload: from must not be greater than to",
        });
        await assert.rejects(client.deleteRecordsRange({ col: "f1.c", doc: "d", fromTs: 10, toTs: 5 }), {
            message: "invalid payload: fromTs must not be greater than toTs",
        });
        await assert.rejects(client.fetchLatestRecords({ col: "", ts: 1 }), { message: "invalid payload: col must be a non-empty string" });
        await assert.rejects(client.getValue({ col: "f1.c", key: 7 as never }), { message: "invalid payload: key must be a non-empty string" });
        // Nothing of the rejected batch was applied, and the connection still works.
        assert.ok(!(await client.fetchCollections()).includes("f1.c"));
    });
});

describe("refused keys", () => {
    it("fails at once with the close reason instead of retrying", async () => {
        const client = fixture.client({ apiKey: "f2.unknown", reconnectInterval: 60_000, maxReconnectAttempts: 5 });
        await assert.rejects(within(client.connect(), 3000, "connect with an unknown key"), {
            message: "Authentication failed: Unknown API key",
        });
        await assert.rejects(within(client.fetchCollections(), 3000, "request with an unknown key"), {
            message: "Failed to connect before sending: Authentication failed: Unknown API key",
        });
        const missing = fixture.client({ apiKey: "", reconnectInterval: 60_000 });
        await assert.rejects(within(missing.connect(), 3000, "connect without a key"), {
            message: "Authentication failed: Missing API key parameter",
        });
    });
});

describe("lost connections", () => {
    it("rejects pending requests when the server is killed, and reconnects when it is back on the same port", async () => {
        let server = await startServer();
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, reconnectInterval: 25, maxReconnectAttempts: 12, connectionName: "f3" });
        try {
            await client.setValue({ col: "f3.c", key: "k", value: "before" });
            await server.pause(); // requests are sent but cannot be answered
            const pending = [settle(client.fetchCollections()), settle(client.getValue({ col: "f3.c", key: "k" }))];
            const port = server.port;
            await server.stop("SIGKILL");
            for (const result of await within(Promise.all(pending), 3000, "pending requests")) {
                assert.equal(result.ok, false);
                assert.equal((result as { error: Error }).error.message, LOST);
            }
            server = await startServer({ port });
            // Requests made meanwhile are queued until the reconnect succeeds.
            assert.equal(await within(client.getValue({ col: "f3.c", key: "k" }), 8000, "request after restart"), "");
            const connections = await client.getConnections();
            assert.deepEqual(connections.map((c) => [c.name, c.self]), [["f3", true]]);
        } finally {
            client.close();
            await server.stop("SIGKILL");
        }
    });

    it("sees the graceful shutdown (1001) and gives up after maxReconnectAttempts", async () => {
        const server = await startServer();
        const warnings: string[] = [];
        const savedWarn = console.warn;
        console.warn = (...args: unknown[]) => void warnings.push(args.join(" "));
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, reconnectInterval: 10, maxReconnectAttempts: 2, showLogs: true });
        try {
            await client.connect();
            const exit = await within(server.stop("SIGTERM"), 6000, "graceful shutdown");
            assert.equal(exit.signal, null, "the server exits by itself on SIGTERM");
            await waitFor(
                () => warnings.some((line) => line.includes("Connection lost (code 1001, server shutting down)")),
                "the client to see the shutdown close",
            );
            const result = await within(settle(client.fetchCollections()), 3000, "request while the server is gone");
            assert.equal(result.ok, false);
            assert.match(
                (result as { error: Error }).error.message,
                /^(WebSocket reconnect attempts exhausted\.|Failed to connect before sending: .*)$/,
            );
        } finally {
            console.warn = savedWarn;
            client.close();
            await server.stop("SIGKILL");
        }
    });

    it("keeps a request made while the connection is closing for the next connection", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const client = fixture.client({ url: proxy.url });
            await client.setValue({ col: "f10.c", key: "k", value: "v" });
            // The server's close frame has come, the connection's end has not: a frame sent now
            // would be dropped by the closing socket without a word.
            await within(proxy.closeFrameWithoutEnd(), 3000, "the client's answering close frame");
            const result = settle(client.getValue({ col: "f10.c", key: "k" }));
            proxy.cut(); // the close event, and a new connection
            const answer = await within(result, 5000, "the request made while closing");
            assert.deepEqual(answer, { ok: true, value: "v" });
            assert.equal(proxy.connections, 2);
        } finally {
            await proxy.close();
        }
    });

    it("rejects requests queued during reconnection with 'reconnect attempts exhausted'", async () => {
        const server = await startServer();
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, reconnectInterval: 20, maxReconnectAttempts: 2 });
        try {
            await client.connect();
            await server.pause();
            const inFlight = client.fetchCollections();
            const stop = server.stop("SIGKILL");
            // Once the drop is noticed, the reconnect loop runs and new requests queue behind it.
            const queued = inFlight.then(
                () => assert.fail("the request cannot succeed"),
                (error: Error) => {
                    assert.equal(error.message, LOST);
                    return settle(client.fetchCollections());
                },
            );
            await stop;
            const result = await within(queued, 3000, "queued request");
            assert.equal(result.ok, false, "the queued request cannot succeed");
            assert.equal((result as { error: Error }).error.message, "WebSocket reconnect attempts exhausted.");
        } finally {
            client.close();
            await server.stop("SIGKILL");
        }
    });
});

describe("timeouts and close()", () => {
    it("times out a request the server does not answer, and ignores the late answer", async () => {
        const server = await startServer();
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, requestTimeout: 150 });
        try {
            await client.connect();
            await server.pause();
            await assert.rejects(client.fetchCollections(), /^Error: Request [a-z0-9]{16,} timed out after 150ms\.$/);
            server.resume();
            assert.ok(Array.isArray(await client.fetchCollections()));
        } finally {
            client.close();
            await server.stop("SIGKILL");
        }
    });

    it("close() rejects pending requests; the client reconnects on the next call", async () => {
        const server = await startServer();
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, connectionName: "f7" });
        const observer = new FluxionDBClient({ url: server.url, apiKey: server.key, connectionName: "f7-observer" });
        try {
            await client.connect();
            await server.pause();
            const pending = settle(client.fetchCollections());
            client.close();
            const result = await pending;
            assert.equal(result.ok, false);
            assert.equal((result as { error: Error }).error.message, "WebSocket connection closed.");
            server.resume();
            await waitFor(
                async () => !(await observer.getConnections()).some((c) => c.name === "f7"),
                "the closed connection to disappear",
            );
            assert.deepEqual(await client.fetchCollections(), []);
            assert.ok((await observer.getConnections()).some((c) => c.name === "f7"));
        } finally {
            client.close();
            observer.close();
            await server.stop("SIGKILL");
        }
    });
});

describe("close codes", () => {
    it("rejects requests in flight with the close code and reason", async () => {
        const server = await startServer({ extraArgs: ["--max-message-mib", "1"] });
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, reconnectInterval: 50 });
        try {
            await client.connect();
            const result = await settle(client.insertSingleRecord({ col: "f9.c", doc: "d", ts: 1, data: "x".repeat(2 << 20) }));
            assert.equal(result.ok, false);
            const error = (result as { error: Error }).error as ConnectionClosedError;
            assert.equal(error.code, 1009);
            assert.notEqual(error.reason, "");
            assert.equal(error.message, `WebSocket connection closed before response was received. (close 1009: ${error.reason})`);
        } finally {
            client.close();
            await server.stop("SIGTERM");
        }
    });
});
