// The liveness watchdog against the real server, through a proxy that can freeze a link (stop
// forwarding both ways without closing anything, as a NAT that dropped the flow does): a frozen
// link is given up and replaced, and a healthy idle one is kept.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConnectionClosedError, SubscriptionEvent } from "../dist/index.js";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { startProxy } from "./support/proxy.js";
import { spySocket } from "./support/spy-socket.js";
import { settle, waitFor, within } from "./support/wait.js";

const fixture = useServer();
forbidUnhandledRejections();

function collector(): { events: SubscriptionEvent[]; handler: (e: SubscriptionEvent) => void } {
    const events: SubscriptionEvent[] = [];
    return { events, handler: (e) => events.push(e) };
}

function recData(events: SubscriptionEvent[]): string[] {
    return events.flatMap((e) => (e.type === "rec" ? e.records.map((r) => r.data) : [e.type]));
}

describe("liveness watchdog", () => {
    it("gives up a frozen link: the request in flight is rejected, the subscription resumes on a new one", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const writer = fixture.client();
            const col = "l1.frozen";
            const reader = fixture.client({ url: proxy.url, keepAliveInterval: 200, keepAliveTimeout: 1_000 });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col }, handler);
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "before" });
            await waitFor(() => events.length >= 1, "the write before the freeze");

            proxy.freeze();
            // Neither end is told: without a watchdog this request, and the subscription, would wait forever.
            const inFlight = settle(reader.fetchCollections());
            await writer.insertSingleRecord({ col, doc: "d", ts: 2, data: "while frozen" });
            const result = await within(inFlight, 5_000, "the request in flight on the frozen link");
            assert.equal(result.ok, false);
            const error = (result as { error: Error }).error as ConnectionClosedError;
            assert.ok(
                error.message.startsWith("WebSocket connection closed before response was received."),
                `unexpected error: ${error.message}`,
            );
            assert.equal(error.code, 1006);

            // A fresh link through the proxy: the subscription resumes without a gap.
            await waitFor(() => events.some((e) => e.type === "reconnected"), "the reconnected event");
            await writer.insertSingleRecord({ col, doc: "d", ts: 3, data: "after" });
            await waitFor(() => events.length >= 4, "the missed write and the later one");
            assert.deepEqual(recData(events), ["before", "reconnected", "while frozen", "after"]);
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("keeps a healthy idle subscribed connection across several intervals", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const writer = fixture.client();
            const col = "l2.idle";
            const { impl, wire } = spySocket();
            const reader = fixture.client({
                url: proxy.url,
                webSocketImpl: impl,
                connectionName: "l2",
                keepAliveInterval: 150,
                keepAliveTimeout: 3_000, // generous: a loaded machine must not look like a dead link
            });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col }, handler);
            const sentBefore = wire.sent.length;
            // Idle apart from the watchdog's own probes: wait through several of them.
            await waitFor(() => wire.sent.length - sentBefore >= 5, "five keep-alive probes", 10_000);
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "still here" });
            await waitFor(() => events.length >= 1, "the write after the idle time");
            assert.deepEqual(recData(events), ["still here"]);
            assert.equal(sub.active, true);
            // Still the first connection: the proxy saw one only.
            const mine = (await writer.getConnections()).filter((c) => c.name === "l2");
            assert.equal(mine.length, 1);
            assert.equal(proxy.connections, 1);
        } finally {
            await proxy.close();
        }
    });

    it("keeps an idle connection to an upstream server, which closes on message types it does not know", async () => {
        const proxy = await startProxy(fixture.server.port);
        proxy.actAsUpstream();
        try {
            const { impl, wire } = spySocket();
            const client = fixture.client({
                url: proxy.url,
                webSocketImpl: impl,
                keepAliveInterval: 100,
                keepAliveTimeout: 3_000,
            });
            await client.setValue({ col: "l3.upstream", key: "k", value: "v" });
            const sentBefore = wire.sent.length;
            // The standard WebSocket cannot ping: each probe is a request, which upstream must know.
            await waitFor(() => wire.sent.length - sentBefore >= 5, "five keep-alive probes", 10_000);
            assert.deepEqual(proxy.unknownTypes, []);
            assert.equal(await client.getValue({ col: "l3.upstream", key: "k" }), "v");
            assert.equal(proxy.connections, 1);
        } finally {
            await proxy.close();
        }
    });
});
