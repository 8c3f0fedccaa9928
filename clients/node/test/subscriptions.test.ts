// Live subscriptions against the real server: every event type, unsubscribe, and the
// resumption after a dropped connection while a writer keeps writing.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import type { Subscription, SubscriptionEvent } from "../dist/index.js";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { startProxy } from "./support/proxy.js";
import { spySocket } from "./support/spy-socket.js";
import { settle, waitFor, within } from "./support/wait.js";

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

describe("subscription handlers", () => {
    /**
     * Subscribes with `since` to a collection holding three records, with a handler that reads the
     * Subscription subscribe() resolves to, as applications do; then writes one more record.
     */
    async function subscribeUsingSub(url: string, col: string): Promise<{ seen: string[]; errors: unknown[] }> {
        const writer = fixture.client();
        await writer.insertMultipleRecords([1, 2, 3].map((ts) => ({ col, doc: "d", ts, data: `stored ${ts}` })));
        const errors: unknown[] = [];
        const reader = fixture.client({ url, onHandlerError: (error) => errors.push(error) });
        const seen: string[] = [];
        let resolved = false;
        // eslint-disable-next-line prefer-const -- the handler may run before the assignment
        let sub: Subscription;
        sub = await reader.subscribe({ col, since: 0 }, (e) => {
            const when = resolved ? "after" : "before";
            if (e.type === "rec") for (const r of e.records) seen.push(`${r.data} ${when} (seq ${sub.seq})`);
        });
        resolved = true;
        await waitFor(() => seen.length >= 3, "the backlog");
        await writer.insertSingleRecord({ col, doc: "d", ts: 4, data: "live" });
        await waitFor(() => seen.length >= 4, "the live write");
        return { seen, errors };
    }

    it("runs only after subscribe() resolved, for a backlog that comes with the answer", async () => {
        const { seen, errors } = await subscribeUsingSub(fixture.server.url, "h1.backlog");
        assert.deepEqual(errors, []);
        assert.deepEqual(
            seen.map((line) => line.replace(/ \(seq \d+\)$/, "")),
            ["stored 1 after", "stored 2 after", "stored 3 after", "live after"],
        );
    });

    it("runs only after subscribe() resolved, for a backlog that comes before the answer", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            proxy.answersAfterBacklog();
            const { seen, errors } = await subscribeUsingSub(proxy.url, "h2.backlog");
            assert.deepEqual(errors, []);
            assert.deepEqual(
                seen.map((line) => line.replace(/ \(seq \d+\)$/, "")),
                ["stored 1 after", "stored 2 after", "stored 3 after", "live after"],
            );
        } finally {
            await proxy.close();
        }
    });

    it("reports what a handler throws, or its promise rejects with, to onHandlerError, and keeps delivering", async () => {
        const writer = fixture.client();
        const failures: [unknown, SubscriptionEvent, Subscription][] = [];
        const reader = fixture.client({ onHandlerError: (error, event, sub) => failures.push([error, event, sub]) });
        const col = "h3.throw";
        const seen: number[] = [];
        const sub = await reader.subscribe({ col }, (e) => {
            if (e.type !== "rec") return;
            const ts = e.records[0]!.ts;
            seen.push(ts);
            if (ts === 1) throw new Error("sync bug");
            if (ts === 2) return Promise.reject(new Error("async bug"));
            return undefined;
        });
        for (const ts of [1, 2, 3]) await writer.insertSingleRecord({ col, doc: "d", ts, data: "x" });
        await waitFor(() => seen.length >= 3 && failures.length >= 2, "three events and two failures");
        assert.deepEqual(seen, [1, 2, 3]);
        assert.deepEqual(
            failures.map(([error, event, s]) => [(error as Error).message, event.type === "rec" ? event.records[0]!.ts : event.type, s]),
            [
                ["sync bug", 1, sub],
                ["async bug", 2, sub],
            ],
        );
        assert.equal(sub.active, true);
    });

    it("without onHandlerError, rethrows a handler's error and rejection as uncaught exceptions", async () => {
        const col = "h4.uncaught";
        const dist = new URL("../dist/index.js", import.meta.url).href;
        const script = `
            import { FluxionDBClient } from ${JSON.stringify(dist)};
            const [url, apiKey, col] = process.argv.slice(-3);
            let uncaught = 0;
            const client = new FluxionDBClient({ url, apiKey });
            process.on("uncaughtException", (error) => {
                console.log("uncaught: " + error.message);
                if (++uncaught === 2) client.close();
            });
            await client.subscribe({ col }, async (e) => {
                if (e.type === "rec" && e.records[0].ts === 1) throw new Error("async bug");
            });
            await client.subscribe({ col }, (e) => {
                if (e.type === "rec" && e.records[0].ts === 2) throw new Error("sync bug");
            });
            await client.insertSingleRecord({ col, doc: "d", ts: 1, data: "x" });
            await client.insertSingleRecord({ col, doc: "d", ts: 2, data: "x" });
        `;
        const child = spawn(process.execPath, ["--experimental-websocket", "--input-type=module", "-e", script, "--", fixture.server.url, fixture.server.key, col], {
            stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        try {
            assert.equal(await within(exited, 10_000, "the child"), 0);
            assert.deepEqual(out.trim().split("\n").sort(), ["uncaught: async bug", "uncaught: sync bug"]);
        } finally {
            child.kill("SIGKILL");
        }
    });
});

describe("unsubscribe()", () => {
    it("succeeds when the connection drops before the answer, and the subscription is not resumed", async () => {
        const proxy = await startProxy(fixture.server.port);
        try {
            const { impl, wire } = spySocket();
            const reader = fixture.client({ url: proxy.url, webSocketImpl: impl });
            const writer = fixture.client();
            const col = "u1.drop";
            const { events, handler } = collector();
            const sub = await reader.subscribe({ col }, handler);
            proxy.holdRequests(); // the unsub request stays in the proxy, unanswered
            const result = settle(sub.unsubscribe());
            await waitFor(() => wire.sent.some((f) => f.type === "unsub"), "the unsub request");
            proxy.cut();
            proxy.releaseRequests();
            assert.deepEqual(await within(result, 5_000, "unsubscribe()"), { ok: true, value: undefined });
            assert.equal(sub.active, false);
            // The client reconnects (another request proves it) without resuming it.
            await reader.fetchCollections();
            await writer.insertSingleRecord({ col, doc: "d", ts: 1, data: "after" });
            await reader.fetchCollections(); // answered after anything pushed before it
            assert.deepEqual(events, []);
            assert.deepEqual(wire.sent.filter((f) => f.type === "sub").length, 1);
        } finally {
            await proxy.close();
        }
    });
});
