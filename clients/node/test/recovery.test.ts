// Subscriptions across failures against the real server: a connection dropped during a `since`
// backlog or after it (complete by the count its answer announced), reconnection that gives up, a resume request that times out, unsubscribing while a
// resume is on its way, and a `sub` answered after its timeout.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FluxionDBClient, type SubscriptionEvent } from "../dist/index.js";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { startProxy } from "./support/proxy.js";
import { startServer } from "./support/server.js";
import { spySocket } from "./support/spy-socket.js";
import { settle, waitFor, within } from "./support/wait.js";

const fixture = useServer();
forbidUnhandledRejections();

function collector(): { events: SubscriptionEvent[]; handler: (e: SubscriptionEvent) => void } {
    const events: SubscriptionEvent[] = [];
    return { events, handler: (e) => events.push(e) };
}

describe("a since backlog cut short", () => {
    it("ends the subscription with resumeLost instead of resuming after the backlog's seq", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const writer = fixture.client();
            const col = "r1.since";
            for (let i = 0; i < 3000; i += 1000) {
                await writer.insertMultipleRecords(
                    Array.from({ length: 1000 }, (_, j) => ({ col, doc: `d${(i + j) % 3}`, ts: i + j + 1, data: "x".repeat(100) })),
                );
            }
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            proxy.cutAfterRecs(1); // the answer (backlog: 3) and the first backlog frame get through
            const sub = await reader.subscribe({ col, since: 0 }, handler);
            const end = await waitFor(() => events.find((e) => e.type === "subend"), "the subend");
            assert.deepEqual(end, { type: "subend", sub: sub.id, error: "connection lost during the since backlog", resumeLost: true });
            assert.deepEqual(events.map((e) => e.type), ["rec", "subend"]);
            assert.equal(sub.active, false);
            // The client reconnects (another request proves it) and does not resume it.
            await reader.fetchCollections();
            assert.equal(events.filter((e) => e.type === "reconnected").length, 0);
        } finally {
            await proxy.close();
        }
    });

    it("resumes a since subscription whose backlog was followed by a later write", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const writer = fixture.client();
            const col = "r2.since";
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "stored" });
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col, since: 0 }, handler);
            await writer.insertSingleRecord({ col, doc: "d", ts: 2, data: "live" });
            await waitFor(() => events.length >= 2, "the backlog and the live write");
            proxy.cut();
            await writer.insertSingleRecord({ col, doc: "d", ts: 3, data: "while away" });
            await waitFor(() => events.length >= 4, "the resumption and the missed write");
            assert.deepEqual(
                events.map((e) => (e.type === "rec" ? e.records[0]!.data : e.type)),
                ["stored", "live", "reconnected", "while away"],
            );
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });
});

describe("a since backlog known complete by its count", () => {
    /** `n` stored records of one document: ceil(n / 1000) backlog frames. */
    async function store(col: string, n: number): Promise<void> {
        await fixture.client().insertMultipleRecords(Array.from({ length: n }, (_, i) => ({ col, doc: "d", ts: i + 1, data: "stored" })));
    }

    /** Cuts the reader's connection, writes once more, and waits for the resumption and that write. */
    async function cutAndWrite(proxy: { cut(): void }, col: string, events: SubscriptionEvent[]): Promise<void> {
        const before = events.length;
        proxy.cut();
        await fixture.client().insertSingleRecord({ col, doc: "d", ts: 1_000_000, data: "while away" });
        await waitFor(() => events.length >= before + 2, "the resumption and the missed write");
    }

    it("resumes a quiet collection's since subscription once every announced frame arrived", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const col = "r7.quiet";
            await store(col, 1500); // two backlog frames, and no later write before the drop
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col, since: 0 }, handler);
            const answerSeq = sub.seq;
            await waitFor(() => events.length >= 2, "the two backlog frames");
            await cutAndWrite(proxy, col, events);
            assert.deepEqual(
                events.map((e) => (e.type === "rec" ? `${e.records.length} ${e.records[0]!.data}` : e.type)),
                ["1000 stored", "500 stored", "reconnected", "1 while away"],
            );
            assert.deepEqual(events[2], { type: "reconnected", sub: sub.id, afterSeq: answerSeq });
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("resumes a since subscription whose backlog was empty", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const col = "r8.empty";
            await store(col, 1); // at ts 1: nothing above since = 5
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col, since: 5 }, handler);
            await cutAndWrite(proxy, col, events);
            assert.deepEqual(
                events.map((e) => (e.type === "rec" ? e.records[0]!.data : e.type)),
                ["reconnected", "while away"],
            );
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("counts backlog frames that arrive before the answer, and delivers them", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const col = "r9.early";
            await store(col, 1500);
            proxy.answersAfterBacklog();
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col, since: 0 }, handler);
            await waitFor(() => events.length >= 2, "the two backlog frames");
            await cutAndWrite(proxy, col, events);
            const answerSeq = (events[0] as { seq: number }).seq;
            assert.deepEqual(
                events.map((e) => (e.type === "rec" ? `${e.seq === answerSeq ? "backlog" : "later"} ${e.records.length}` : e.type)),
                ["backlog 1000", "backlog 500", "reconnected", "later 1"],
            );
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("without a count in the answer (an older server), ends on a drop before a later write", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const col = "r10.old";
            await store(col, 1);
            proxy.stripBacklog();
            const reader = fixture.client({ url: proxy.url });
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col, since: 0 }, handler);
            await waitFor(() => events.length >= 1, "the backlog frame");
            proxy.cut();
            const end = await waitFor(() => events.find((e) => e.type === "subend"), "the subend");
            assert.deepEqual(end, { type: "subend", sub: sub.id, error: "connection lost during the since backlog", resumeLost: true });
            assert.equal(sub.active, false);
        } finally {
            await proxy.close();
        }
    });
});

describe("reconnection that gives up", () => {
    it("ends every subscription with resumeLost once the attempts are exhausted", async () => {
        const proxy = await startProxy(fixture.server.port);
        const reader = fixture.client({ url: proxy.url, reconnectInterval: 10, maxReconnectAttempts: 2 });
        const a = collector();
        const b = collector();
        const subA = await reader.subscribe({ col: "r3.a" }, a.handler);
        const subB = await reader.subscribe({ col: "r3.b" }, b.handler);
        await proxy.close(); // the server cannot be reached any more
        for (const [sub, events] of [[subA, a.events], [subB, b.events]] as const) {
            await waitFor(() => events.length >= 1, "the subend");
            assert.deepEqual(events, [{ type: "subend", sub: sub.id, error: "WebSocket reconnect attempts exhausted.", resumeLost: true }]);
            assert.equal(sub.active, false);
        }
    });
});

describe("resume requests", () => {
    it("ends the subscription when its resume request times out, and unsubscribes the late id", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const spy = spySocket();
            const reader = fixture.client({ url: proxy.url, requestTimeout: 300, webSocketImpl: spy.impl });
            const writer = fixture.client();
            const col = "r4.timeout";
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col }, handler);
            proxy.holdRequests();
            proxy.cut();
            const end = await waitFor(() => events.find((e) => e.type === "subend"), "the subend");
            assert.equal(end.type, "subend");
            assert.match((end as { error: string }).error, /^Request [a-z0-9]+ timed out after 300ms\.$/);
            assert.equal((end as { resumeLost: boolean }).resumeLost, false);
            assert.equal(sub.active, false);
            // The server answers the held resume late: the client ends what it started.
            proxy.releaseRequests();
            await waitFor(() => spy.wire.sent.some((f) => f.type === "unsub"), "the unsub of the late id");
            assert.deepEqual(spy.wire.sent.filter((f) => f.type === "unsub").map((f) => f.payload), [{ sub: "s1" }]);
            const pushesBefore = spy.wire.pushes.length;
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "x" });
            await reader.fetchCollections(); // answered after anything pushed before it
            assert.equal(spy.wire.pushes.length, pushesBefore);
            assert.deepEqual(events, [end]);
        } finally {
            await proxy.close();
        }
    });

    it("unsubscribing while the resume is on its way sends no stale id and ends the resumed one", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const spy = spySocket();
            const reader = fixture.client({ url: proxy.url, webSocketImpl: spy.impl });
            const writer = fixture.client();
            const events = { a: collector(), b: collector() };
            await (await reader.subscribe({ col: "r5.x" }, () => {})).unsubscribe(); // s1
            const a = await reader.subscribe({ col: "r5.a" }, events.a.handler); // s2
            const b = await reader.subscribe({ col: "r5.b" }, events.b.handler); // s3
            const unsubsBefore = spy.wire.sent.filter((f) => f.type === "unsub").length;
            proxy.holdRequests();
            proxy.cut();
            await waitFor(() => spy.wire.sent.filter((f) => f.payload.after_seq !== undefined).length >= 2, "both resumes sent");
            // On the new connection `a` becomes s1 and `b` s2: an `unsub s2` (a's old id) would end b.
            const unsubscribed = a.unsubscribe();
            assert.equal(a.active, false);
            proxy.releaseRequests();
            await within(unsubscribed, 3000, "unsubscribe()");
            await waitFor(() => events.b.events.some((e) => e.type === "reconnected"), "b resumed");
            const unsubs = () => spy.wire.sent.filter((f) => f.type === "unsub").slice(unsubsBefore);
            await waitFor(() => unsubs().length > 0, "the unsub of a's new id");
            await writer.insertSingleRecord({ col: "r5.a", doc: "d", ts: 1, data: "to a" });
            await writer.insertSingleRecord({ col: "r5.b", doc: "d", ts: 1, data: "to b" });
            await waitFor(() => events.b.events.some((e) => e.type === "rec"), "b's write");
            await reader.fetchCollections();
            assert.deepEqual(unsubs().map((f) => f.payload), [{ sub: "s1" }]);
            assert.deepEqual(spy.wire.pushes.filter((p) => p.col === "r5.a"), []);
            assert.deepEqual(events.a.events, []);
            assert.equal(b.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("unsubscribes a subscription the server started after the caller's request timed out", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const spy = spySocket();
            const reader = fixture.client({ url: proxy.url, requestTimeout: 300, webSocketImpl: spy.impl });
            const writer = fixture.client();
            const col = "r6.late";
            await reader.connect();
            proxy.holdRequests();
            const result = await settle(reader.subscribe({ col }, () => assert.fail("no event expected")));
            assert.equal(result.ok, false);
            assert.match((result as { error: Error }).error.message, /timed out after 300ms/);
            proxy.releaseRequests();
            await waitFor(() => spy.wire.sent.some((f) => f.type === "unsub"), "the unsub of the late id");
            assert.deepEqual(spy.wire.sent.filter((f) => f.type === "unsub").map((f) => f.payload), [{ sub: "s1" }]);
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "x" });
            await reader.fetchCollections();
            assert.deepEqual(spy.wire.pushes, []);
        } finally {
            await proxy.close();
        }
    });
});

describe("a resume the restarted server cannot serve", () => {
    it("ends with resume point lost, without announcing a resume first", async () => {
        let server = await startServer();
        const client = new FluxionDBClient({ url: server.url, apiKey: server.key, reconnectInterval: 25, maxReconnectAttempts: 20 });
        try {
            const col = "r9.restart";
            const { events, handler } = collector();
            const sub = await client.subscribe({ col }, handler);
            await client.insertSingleRecord({ col, doc: "d", ts: 1, data: "before" });
            await waitFor(() => events.length >= 1, "the write before the restart");
            const port = server.port;
            await server.stop("SIGKILL");
            // Nothing of the old server's history is left: the resume point is gone.
            server = await startServer({ port });
            await waitFor(() => events.length >= 2, "the end of the subscription", 10_000);
            // An answer to a later request comes after anything delivered along with the subend.
            await client.fetchCollections();
            assert.deepEqual(events.slice(1), [{ type: "subend", sub: sub.id, error: "resume point lost", resumeLost: true }]);
            assert.equal(sub.active, false);
        } finally {
            client.close();
            await server.stop("SIGKILL");
        }
    });
});
