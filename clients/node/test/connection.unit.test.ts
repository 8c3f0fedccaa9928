// Connection behaviour against an in-process fake server: retries, refused keys, timeouts,
// lost connections, close(), logging without the key, no unhandled rejections.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FluxionDBClient, type FluxionDBClientOptions } from "../dist/index.js";
import { FakeServer } from "./support/fake-socket.js";
import { settle, waitFor } from "./support/wait.js";

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
before(() => process.on("unhandledRejection", onUnhandled));
after(() => {
    process.off("unhandledRejection", onUnhandled);
    assert.deepEqual(unhandled, [], "no unhandled rejections");
});

function client(server: FakeServer, options: Partial<FluxionDBClientOptions> = {}) {
    return new FluxionDBClient({
        url: "ws://db.example:8080",
        apiKey: "secret-key-123",
        reconnectInterval: 5,
        webSocketImpl: server.constructorFn,
        ...options,
    });
}

describe("connecting", () => {
    it("retries a failed first connection with back-off, then sends the queued requests once", async () => {
        const server = new FakeServer();
        server.nextConnections = [{ close: 1006 }, { close: 1011, reason: "busy" }];
        const c = client(server, { maxReconnectAttempts: 2 });
        const [a, b] = await Promise.all([c.setValue({ col: "c", key: "k", value: "v" }), c.getKeys({ col: "c" }).catch((e) => e)]);
        assert.equal(a, undefined);
        assert.equal(server.sockets.length, 3);
        assert.deepEqual(server.frames.map((f) => f.type), ["sval", "gkeys"]);
        void b;
        c.close();
    });

    it("gives up after 1 + maxReconnectAttempts attempts and rejects queued requests", async () => {
        const server = new FakeServer();
        server.defaultConnection = { close: 1006 };
        const c = client(server, { maxReconnectAttempts: 2 });
        const request = settle(c.fetchCollections());
        await assert.rejects(c.connect(), /WebSocket/);
        const result = await request;
        assert.equal(result.ok, false);
        assert.match((result as { error: Error }).error.message, /^Failed to connect before sending: /);
        assert.equal(server.sockets.length, 3);
    });

    it("retries at once when a failed connection fires only an error event", async () => {
        const server = new FakeServer();
        server.nextConnections = ["error-only", "error-only"];
        const c = client(server, { maxReconnectAttempts: 2, connectTimeout: 60_000 });
        const started = Date.now();
        await c.connect();
        assert.ok(Date.now() - started < 5_000);
        assert.equal(server.sockets.length, 3);
        server.defaultConnection = "error-only";
        c.close();
        await assert.rejects(c.connect(), { message: "WebSocket error: Received network error or non-101 status code." });
    });

    it("starts a full series of attempts again on the next call after giving up", async () => {
        const server = new FakeServer();
        server.defaultConnection = { close: 1006 };
        const c = client(server, { maxReconnectAttempts: 1 });
        await assert.rejects(c.connect());
        assert.equal(server.sockets.length, 2);
        await assert.rejects(c.connect());
        assert.equal(server.sockets.length, 4);
        server.defaultConnection = "ready";
        await c.connect();
        c.close();
    });

    it("a request made from the rejection handler of a failed one starts a new attempt", async () => {
        const server = new FakeServer();
        server.defaultConnection = { close: 1006 };
        const c = client(server, { maxReconnectAttempts: 0 });
        const retried = await c.fetchCollections().then(
            () => assert.fail("cannot succeed"),
            () => {
                server.defaultConnection = "ready";
                server.respond = (frame) => ({ id: frame.id, collections: ["ok"] });
                return c.fetchCollections();
            },
        );
        assert.deepEqual(retried, ["ok"]);
        c.close();
    });

    it("fails at once, without retrying, when the server refuses the key", async () => {
        const server = new FakeServer();
        server.defaultConnection = { close: 1008, reason: "Unknown API key" };
        const c = client(server, { maxReconnectAttempts: 5, reconnectInterval: 60_000 });
        await assert.rejects(c.connect(), { message: "Authentication failed: Unknown API key" });
        await assert.rejects(c.getValue({ col: "c", key: "k" }), {
            message: "Failed to connect before sending: Authentication failed: Unknown API key",
        });
        assert.equal(server.sockets.length, 2);
    });

    it("times out an attempt whose ready frame does not come", async () => {
        const server = new FakeServer();
        server.nextConnections = ["silent"];
        const c = client(server, { connectTimeout: 30, maxReconnectAttempts: 0 });
        await assert.rejects(c.connect(), { message: "WebSocket ready timeout after 30ms." });
        await c.connect(); // the next attempt gets `ready`
        c.close();
    });

    it("shares one attempt between concurrent connect() calls", async () => {
        const server = new FakeServer();
        const c = client(server);
        await Promise.all([c.connect(), c.connect(), c.connect()]);
        await c.connect();
        assert.equal(server.sockets.length, 1);
        c.close();
    });

    it("explains a missing WebSocket implementation", async () => {
        const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
        delete (globalThis as { WebSocket?: unknown }).WebSocket;
        try {
            const c = new FluxionDBClient({ url: "ws://127.0.0.1:1", apiKey: "k" });
            await assert.rejects(c.connect(), /webSocketImpl/);
        } finally {
            (globalThis as { WebSocket?: unknown }).WebSocket = saved;
        }
    });
});

describe("requests in flight", () => {
    it("rejects a request that gets no answer within requestTimeout", async () => {
        const server = new FakeServer();
        server.respond = () => undefined;
        const c = client(server, { requestTimeout: 30 });
        await assert.rejects(c.fetchCollections(), /^Error: Request [a-z0-9]{16,} timed out after 30ms\.$/);
        c.close();
    });

    it("rejects sent requests when the connection drops, then reconnects and serves new ones", async () => {
        const server = new FakeServer();
        server.respond = () => undefined;
        const c = client(server, { maxReconnectAttempts: 3 });
        const lost = [settle(c.fetchCollections()), settle(c.getKeys({ col: "c" }))];
        await waitFor(() => server.frames.length === 2, "both requests sent");
        server.respond = (frame) => ({ id: frame.id, collections: ["x"] });
        server.last.serverClose(1006);
        for (const result of await Promise.all(lost)) {
            assert.equal(result.ok, false);
            assert.equal((result as { error: Error }).error.message, "WebSocket connection closed before response was received.");
        }
        assert.deepEqual(await c.fetchCollections(), ["x"]);
        assert.equal(server.sockets.length, 2);
        c.close();
    });

    it("rejects queued requests with 'reconnect attempts exhausted' when the server stays away", async () => {
        const server = new FakeServer();
        const c = client(server, { maxReconnectAttempts: 2 });
        await c.connect();
        server.defaultConnection = { close: 1006 };
        server.last.serverClose(1001, "server shutting down");
        const queued = await settle(c.fetchCollections());
        assert.equal(queued.ok, false);
        assert.equal((queued as { error: Error }).error.message, "WebSocket reconnect attempts exhausted.");
        assert.equal(server.sockets.length, 3);
    });

    it("close() rejects everything pending; the client can be used again", async () => {
        const server = new FakeServer();
        server.respond = () => undefined;
        const c = client(server);
        const pending = settle(c.fetchCollections());
        await waitFor(() => server.frames.length === 1, "request sent");
        c.close();
        const result = await pending;
        assert.equal(result.ok, false);
        assert.equal((result as { error: Error }).error.message, "WebSocket connection closed.");
        server.respond = (frame) => ({ id: frame.id, collections: [] });
        assert.deepEqual(await c.fetchCollections(), []);
        assert.equal(server.sockets.length, 2);
        c.disconnect();
    });

    it("close() during a back-off wait stops reconnecting", async () => {
        const server = new FakeServer();
        server.defaultConnection = { close: 1006 };
        const c = client(server, { reconnectInterval: 60_000 });
        const connecting = settle(c.connect());
        await waitFor(() => server.sockets.length === 1 && server.last.readyState === 3, "first attempt failed");
        c.close();
        const result = await connecting;
        assert.equal(result.ok, false);
        assert.equal((result as { error: Error }).error.message, "WebSocket connection closed.");
        assert.equal(server.sockets.length, 1);
    });
});

describe("logging", () => {
    it("never prints the API key", async () => {
        const lines: string[] = [];
        const saved = { log: console.log, warn: console.warn, error: console.error, info: console.info };
        console.log = console.warn = console.error = console.info = (...args: unknown[]) => lines.push(args.join(" "));
        try {
            const server = new FakeServer();
            server.nextConnections = [{ close: 1006 }];
            const c = client(server, { showLogs: true, url: "ws://db.example:8080/?api-key=secret-key-123" });
            await c.connect();
            server.respond = (frame) => ({ error: "no id", echo: frame.data });
            server.last.deliver("not json");
            server.last.serverClose(1006);
            await c.connect();
            c.close();
            server.defaultConnection = { close: 1008, reason: "Unknown API key" };
            await c.connect().catch(() => {});
        } finally {
            Object.assign(console, saved);
        }
        assert.ok(lines.length > 3, "logs were written");
        for (const line of lines) assert.ok(!line.includes("secret-key-123"), `key leaked in: ${line}`);
    });
});
