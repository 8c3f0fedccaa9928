// Time-series methods against the real server: insert, latest, history, deletes, collections,
// connections.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";

const fixture = useServer();
forbidUnhandledRejections();

const records = (col: string) => [
    { ts: 100, doc: "dev-1", data: "temp:20 state:flying", col },
    { ts: 200, doc: "dev-1", data: "temp:21 state:landed", col },
    { ts: 300, doc: "dev-1", data: "temp:22 state:flying quality:bad", col },
    { ts: 150, doc: "dev-2", data: "temp:30 state:flying", col },
    { ts: 50, doc: "probe-9", data: "temp:5 state:parked", col },
];

describe("records", () => {
    it("inserts and resolves with the raw {id} response", async () => {
        const client = fixture.client();
        const many = (await client.insertMultipleRecords(records("r1.sensors"))) as { id: string };
        assert.deepEqual(Object.keys(many), ["id"]);
        assert.match(many.id, /^[a-z0-9]{16,}$/);
        const one = (await client.insertSingleRecord({ ts: 400, doc: "dev-3", data: "x", col: "r1.sensors" })) as {
            id: string;
        };
        assert.deepEqual(Object.keys(one), ["id"]);
        const empty = await client.insertMultipleRecords([]);
        assert.ok(typeof (empty as { id: string }).id === "string");
    });

    it("fetches the latest record per document with doc, pattern, from, where and filter", async () => {
        const client = fixture.client();
        const col = "r2.sensors";
        await client.insertMultipleRecords(records(col));
        assert.deepEqual(await client.fetchLatestRecords({ col, ts: 1000 }), {
            "dev-1": { ts: 300, data: "temp:22 state:flying quality:bad" },
            "dev-2": { ts: 150, data: "temp:30 state:flying" },
            "probe-9": { ts: 50, data: "temp:5 state:parked" },
        });
        assert.deepEqual(await client.fetchLatestRecords({ col, ts: 250, doc: "dev-1" }), {
            "dev-1": { ts: 200, data: "temp:21 state:landed" },
        });
        assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col, ts: 1000, doc: "/^dev-/" })), ["dev-1", "dev-2"]);
        assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col, ts: 1000, from: 100 })), ["dev-1", "dev-2"]);
        assert.deepEqual(
            Object.keys(await client.fetchLatestRecords({ col, ts: 1000, where: "state:flying", filter: "/QUALITY:BAD/i" })),
            ["dev-2"],
        );
        assert.deepEqual(await client.fetchLatestRecords({ col: "r2.nothing", ts: 1000 }), {});
    });

    it("fetches a document's history with range, limit, reverse and predicates", async () => {
        const client = fixture.client();
        const col = "r3.sensors";
        await client.insertMultipleRecords(records(col));
        const all = await client.fetchDocument({ col, doc: "dev-1", from: 0, to: 1000 });
        assert.deepEqual(all.map((r) => r.ts), [100, 200, 300]);
        const newest = await client.fetchDocument({ col, doc: "dev-1", from: 0, to: 1000, limit: 2, reverse: true });
        assert.deepEqual(newest, [
            { ts: 300, data: "temp:22 state:flying quality:bad" },
            { ts: 200, data: "temp:21 state:landed" },
        ]);
        const flying = await client.fetchRecords({ col, doc: "dev-1", from: 150, to: 300, where: "/state:(flying|landed)/", filter: "bad" });
        assert.deepEqual(flying, [{ ts: 200, data: "temp:21 state:landed" }]);
        assert.deepEqual(await client.fetchDocument({ col, doc: "missing", from: 0, to: 10 }), []);
    });

    it("replaces a record inserted at an existing timestamp and round-trips unusual names", async () => {
        const client = fixture.client();
        const col = "r4.../weird/\u0000 ✓";
        const doc = "doc ⟨∞⟩ \"quoted\"";
        await client.insertSingleRecord({ ts: 1, doc, data: "first", col });
        await client.insertSingleRecord({ ts: 1, doc, data: '{"json":"text","n":[1,2]}', col });
        assert.deepEqual(await client.fetchDocument({ col, doc, from: 0, to: 10 }), [
            { ts: 1, data: '{"json":"text","n":[1,2]}' },
        ]);
        assert.ok((await client.fetchCollections()).includes(col));
    });

    it("deletes records, ranges, documents and collections", async () => {
        const client = fixture.client();
        const col = "r5.sensors";
        await client.insertMultipleRecords(records(col));
        await client.deleteRecord({ doc: "dev-1", col, ts: 100 });
        await client.deleteMultipleRecords([
            { doc: "dev-1", col, ts: 200 },
            { doc: "dev-2", col, ts: 999 },
        ]);
        assert.deepEqual((await client.fetchDocument({ col, doc: "dev-1", from: 0, to: 1000 })).map((r) => r.ts), [300]);
        await client.deleteRecordsRange({ doc: "dev-1", col, fromTs: 1, toTs: 300 });
        assert.deepEqual(await client.fetchDocument({ col, doc: "dev-1", from: 0, to: 1000 }), []);
        await client.deleteDocument({ doc: "dev-2", col });
        assert.deepEqual(Object.keys(await client.fetchLatestRecords({ col, ts: 1000 })), ["probe-9"]);
        assert.ok((await client.fetchCollections()).includes(col));
        await client.deleteCollection({ col });
        assert.ok(!(await client.fetchCollections()).includes(col));
        await client.deleteCollection({ col: "r5.never-existed" });
    });

    it("lists collections sorted", async () => {
        const client = fixture.client();
        for (const col of ["r6.b", "r6.a", "r6.c"]) await client.insertSingleRecord({ ts: 1, doc: "d", data: "", col });
        const mine = (await client.fetchCollections()).filter((name) => name.startsWith("r6."));
        assert.deepEqual(mine, ["r6.a", "r6.b", "r6.c"]);
    });

    it("lists connections with names, the caller marked self", async () => {
        const first = fixture.client({ connectionName: "r7 first" });
        const second = fixture.client({ connectionName: "r7-second" });
        await first.connect();
        await second.connect();
        const seen = await second.getConnections();
        const a = seen.find((c) => c.name === "r7 first");
        const b = seen.find((c) => c.name === "r7-second");
        assert.ok(a && b, JSON.stringify(seen));
        assert.equal(a.self, false);
        assert.equal(b.self, true);
        assert.equal(b.ip, "127.0.0.1");
        assert.ok(Number.isInteger(b.since) && b.since >= 0);
        assert.ok(seen.indexOf(a) < seen.indexOf(b), "oldest connection first");
    });
});
