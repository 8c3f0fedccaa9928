// Live subscriptions against the real server: every event type, unsubscribe, and the
// resumption after a dropped connection while a writer keeps writing.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SubscriptionEvent } from "../dist/index.js";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { startProxy } from "./support/proxy.js";
import { waitFor } from "./support/wait.js";

const fixture = useServer();
forbidUnhandledRejections();

/** Collects a subscription's events. */
function collector(): { events: SubscriptionEvent[]; handler: (e: SubscriptionEvent) => void } {
    const events: SubscriptionEvent[] = [];
    return { events, handler: (e) => events.push(e) };
}

describe("subscriptions", () => {
    it("delivers inserts and deletes in apply order, and nothing after unsubscribe()", async () => {
        const reader = fixture.client();
        const writer = fixture.client();
        const col = "s1.live";
        const { events, handler } = collector();
        const sub = await reader.subscribe({ col, doc: "/^dev-/", where: "temp" }, handler);
        assert.equal(sub.id, "s1");
        const start = sub.seq;
        await writer.insertMultipleRecords([
            { col, doc: "dev-1", ts: 1, data: "temp:1" },
            { col, doc: "probe", ts: 1, data: "temp:2" },
            { col, doc: "dev-2", ts: 2, data: "state:x" },
        ]);
        await writer.deleteRecord({ col, doc: "dev-1", ts: 1 });
        await writer.deleteMultipleRecords([{ col, doc: "dev-2", ts: 2 }]);
        await writer.insertSingleRecord({ col, doc: "dev-3", ts: 5, data: "temp:5" });
        await writer.deleteDocument({ col, doc: "dev-3" });
        await writer.insertSingleRecord({ col, doc: "dev-4", ts: 6, data: "temp:6" });
        await writer.deleteCollection({ col });
        await waitFor(() => events.length >= 7, "seven events");
        assert.deepEqual(events, [
            { type: "rec", sub: "s1", col, seq: start + 1, records: [{ doc: "dev-1", ts: 1, data: "temp:1" }] },
            { type: "del", sub: "s1", col, seq: start + 2, doc: "dev-1", from: 1, to: 1 },
            { type: "del", sub: "s1", col, seq: start + 3, doc: "dev-2", ts: [2] },
            { type: "rec", sub: "s1", col, seq: start + 4, records: [{ doc: "dev-3", ts: 5, data: "temp:5" }] },
            { type: "del", sub: "s1", col, seq: start + 5, doc: "dev-3" },
            { type: "rec", sub: "s1", col, seq: start + 6, records: [{ doc: "dev-4", ts: 6, data: "temp:6" }] },
            { type: "del", sub: "s1", col, seq: start + 7 },
        ]);
        assert.equal(sub.seq, start + 7);
        await sub.unsubscribe();
        assert.equal(sub.active, false);
        await writer.insertSingleRecord({ col, doc: "dev-5", ts: 7, data: "temp:7" });
        // The reader's own request is answered after anything pushed before it.
        assert.deepEqual(await reader.fetchCollections(), [col]);
        assert.equal(events.length, 7);
        await sub.unsubscribe(); // a second call is a no-op
    });

    it("sends the stored records first with since, and refuses past the cap", async () => {
        const client = fixture.client();
        const col = "s2.live";
        await client.insertMultipleRecords([
            { col, doc: "a", ts: 1, data: "old" },
            { col, doc: "a", ts: 3, data: "new" },
        ]);
        const { events, handler } = collector();
        const sub = await client.subscribe({ col, since: 2 }, handler);
        await waitFor(() => events.length >= 1, "the backlog");
        assert.deepEqual(events[0], { type: "rec", sub: sub.id, col, seq: sub.seq, records: [{ doc: "a", ts: 3, data: "new" }] });
        await assert.rejects(client.subscribe({ col: "" }, handler), /col must be a non-empty string/);
    });

    it("resubscribes by itself after a dropped connection, without a gap, and reports it", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const reader = fixture.client({ url: proxy.url });
            const writer = fixture.client();
            const col = "s3.live";
            const seen: number[] = [];
            const resumed: SubscriptionEvent[] = [];
            const sub = await reader.subscribe({ col }, (e) => {
                if (e.type === "rec") seen.push(...e.records.map((r) => r.ts));
                else resumed.push(e);
            });
            let ts = 0;
            const write = async (n: number) => {
                for (let i = 0; i < n; i++) {
                    ts++;
                    await writer.insertSingleRecord({ col, doc: "d", ts, data: `v${ts}` });
                }
            };
            await write(20);
            await waitFor(() => seen.length >= 20, "the first pushes");
            proxy.cut();
            // Written while the reader is away: delivered on resumption.
            await write(30);
            await waitFor(() => resumed.length >= 1, "the reconnected event");
            await write(10);
            await waitFor(() => seen.length >= 60, "every write", 10_000);
            assert.deepEqual(seen, Array.from({ length: 60 }, (_, i) => i + 1));
            assert.equal(resumed[0]?.type, "reconnected");
            assert.equal(sub.active, true);
        } finally {
            await proxy.close();
        }
    });

    it("reports resume point lost as an event the caller can act on", async () => {
        const client = fixture.client();
        const { events, handler } = collector();
        const sub = await client.subscribe({ col: "s4.live", afterSeq: 1 }, handler);
        await waitFor(() => events.length >= 1, "the subend");
        assert.deepEqual(events, [{ type: "subend", sub: sub.id, error: "resume point lost", resumeLost: true }]);
        assert.equal(sub.active, false);
    });

    it("passes since and afterSeq together to the server, which refuses them", async () => {
        const client = fixture.client();
        await assert.rejects(client.subscribe({ col: "s5.both", since: 0, afterSeq: 5 }, () => {}), {
            message: "invalid payload: since and after_seq cannot be used together",
        });
    });
});
