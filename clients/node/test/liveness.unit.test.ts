// The liveness watchdog over a socket with the `ws` package's ping surface (ping frames and pong
// events, which the standard WebSocket API lacks), against an in-process fake server.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FluxionDBClient, type ConnectionClosedError } from "../dist/index.js";
import { FakeServer, type PingingFakeSocket } from "./support/fake-socket.js";
import { settle, waitFor, within } from "./support/wait.js";

function pingingClient(server: FakeServer, keepAliveInterval: number, keepAliveTimeout: number): FluxionDBClient {
    server.pinging = true;
    return new FluxionDBClient({
        url: "ws://db.example:8080",
        apiKey: "k",
        reconnectInterval: 5,
        webSocketImpl: server.constructorFn,
        keepAliveInterval,
        keepAliveTimeout,
    });
}

describe("liveness watchdog over a socket that can ping", () => {
    it("pings after each silent interval and keeps the connection while pongs come back, sending no request", async () => {
        const server = new FakeServer();
        const client = pingingClient(server, 20, 500);
        try {
            await client.connect();
            const socket = server.last as PingingFakeSocket;
            await waitFor(() => socket.pings >= 5, "five pings");
            assert.equal(socket.terminated, false);
            assert.equal(server.sockets.length, 1);
            assert.deepEqual(server.frames, []);
        } finally {
            client.close();
        }
    });

    it("counts the server's pings as traffic, and gives up once they stop and its own ping goes unanswered", async () => {
        const server = new FakeServer();
        const client = pingingClient(server, 300, 100);
        const socket = await (async () => {
            await client.connect();
            return server.last as PingingFakeSocket;
        })();
        socket.answersPings = false;
        let serverPings = 0;
        const pinger = setInterval(() => {
            socket.serverPing();
            serverPings++;
        }, 10);
        try {
            await waitFor(() => serverPings >= 50, "fifty pings from the server");
            assert.equal(socket.pings, 0);
            assert.equal(socket.terminated, false);
            assert.equal(server.sockets.length, 1);
            // Once the server falls silent too, the client pings, hears nothing, and moves on.
            clearInterval(pinger);
            await waitFor(() => server.sockets.length === 2, "the reconnection");
            assert.equal(socket.pings, 1);
            assert.equal(socket.terminated, true);
        } finally {
            clearInterval(pinger);
            client.close();
        }
    });

    it("gives up a connection whose ping goes unanswered: terminates it, rejects the request in flight, reconnects", async () => {
        const server = new FakeServer();
        const client = pingingClient(server, 20, 50);
        try {
            await client.connect();
            const first = server.last as PingingFakeSocket;
            first.answersPings = false;
            server.respond = () => undefined; // and answers nothing
            const result = await within(settle(client.fetchCollections()), 5_000, "the request in flight");
            assert.equal(result.ok, false);
            const error = (result as { error: Error }).error as ConnectionClosedError;
            assert.equal(error.code, 1006);
            assert.equal(error.reason, "keep-alive timed out");
            assert.equal(error.message, "WebSocket connection closed before response was received. (close 1006: keep-alive timed out)");
            assert.ok(first.pings >= 1);
            assert.equal(first.terminated, true);
            await waitFor(() => server.sockets.length === 2, "the reconnection");
            server.respond = (frame) => ({ id: frame.id, collections: ["c"] });
            assert.deepEqual(await client.fetchCollections(), ["c"]);
        } finally {
            client.close();
        }
    });
});
