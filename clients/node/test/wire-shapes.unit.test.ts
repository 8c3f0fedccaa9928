// What each method puts on the wire and what it resolves to, against an in-process fake
// server (no binary needed): the official SDK's payload shapes, ids, URL, error mapping.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FluxionDBClient } from "../dist/index.js";
import { FakeServer, type SentFrame } from "./support/fake-socket.js";

function setup(respond?: (frame: SentFrame) => unknown) {
    const server = new FakeServer();
    if (respond) server.respond = respond;
    const client = new FluxionDBClient({
        url: "ws://db.example:8080",
        apiKey: "k",
        webSocketImpl: server.constructorFn,
    });
    return { server, client };
}

describe("payload shapes", () => {
    it("sends each method's message type and payload", async () => {
        const { server, client } = setup();
        await client.fetchCollections().catch(() => {});
        await client.getConnections().catch(() => {});
        await client.deleteCollection({ col: "c" });
        await client.fetchLatestRecords({ col: "c", ts: 10 }).catch(() => {});
        await client.fetchLatestRecords({ col: "c", ts: 10, doc: "d", from: 5, where: "w", filter: "f" }).catch(() => {});
        await client.insertMultipleRecords([{ ts: 1, doc: "d", data: "x", col: "c" }]);
        await client.insertSingleRecord({ ts: 2, doc: "d", data: "y", col: "c" });
        const withExtra = { col: "c", doc: "d", from: 0, to: 9, extra: true } as never;
        await client.fetchDocument(withExtra).catch(() => {});
        await client.deleteDocument({ doc: "d", col: "c" });
        await client.deleteRecord({ doc: "d", col: "c", ts: 1 });
        await client.deleteMultipleRecords([{ doc: "d", col: "c", ts: 1 }]);
        await client.deleteRecordsRange({ doc: "d", col: "c", fromTs: 1, toTs: 2 });
        await client.setValue({ col: "c", key: "k", value: "v" });
        await client.getValue({ col: "c", key: "k" }).catch(() => {});
        await client.getKeys({ col: "c" }).catch(() => {});
        await client.getValues({ col: "c", key: "/x/" }).catch(() => {});
        await client.getValues({ col: "c", key: "" }).catch(() => {});
        await client.getValues({ col: "c" }).catch(() => {});
        await client.deleteValue({ col: "c", key: "k" });
        await client.addApiKey({ key: "n", scope: "readonly" });
        await client.removeApiKey({ key: "n" });
        await client.listApiKeys().catch(() => {});
        const sent = server.frames.map((frame) => [frame.type, frame.data]);
        assert.deepEqual(sent, [
            ["cols", "{}"],
            ["conn", "{}"],
            ["dcol", '{"col":"c"}'],
            ["qry", '{"col":"c","ts":10,"doc":"","from":0}'],
            ["qry", '{"col":"c","ts":10,"doc":"d","from":5,"where":"w","filter":"f"}'],
            ["ins", '[{"ts":1,"doc":"d","data":"x","col":"c"}]'],
            ["ins", '[{"ts":2,"doc":"d","data":"y","col":"c"}]'],
            ["qdoc", '{"col":"c","doc":"d","from":0,"to":9,"extra":true}'],
            ["ddoc", '{"doc":"d","col":"c"}'],
            ["drec", '{"doc":"d","col":"c","ts":1}'],
            ["dmrec", '[{"doc":"d","col":"c","ts":1}]'],
            ["drrng", '{"doc":"d","col":"c","fromTs":1,"toTs":2}'],
            ["sval", '{"col":"c","key":"k","value":"v"}'],
            ["gval", '{"col":"c","key":"k"}'],
            ["gkeys", '{"col":"c"}'],
            ["gvalues", '{"col":"c","key":"/x/"}'],
            ["gvals", '{"col":"c","key":""}'],
            ["gvals", '{"col":"c"}'],
            ["rval", '{"col":"c","key":"k"}'],
            ["keys", '{"action":"add","key":"n","scope":"readonly"}'],
            ["keys", '{"action":"remove","key":"n"}'],
            ["keys", '{"action":"list","key":""}'],
        ]);
        client.close();
    });

    it("uses long random request ids and one connection for every request", async () => {
        const { server, client } = setup();
        await Promise.all(Array.from({ length: 200 }, () => client.setValue({ col: "c", key: "k", value: "v" })));
        const ids = server.frames.map((frame) => frame.id);
        assert.equal(new Set(ids).size, ids.length);
        for (const id of ids) assert.match(id, /^[a-z0-9]{16,}$/);
        assert.equal(server.sockets.length, 1);
        client.close();
    });

    it("puts api-key and name into the URL, form-encoded, replacing earlier values", async () => {
        const server = new FakeServer();
        const client = new FluxionDBClient({
            url: "ws://db.example:8080/ws?api-key=old&x=1",
            apiKey: "a b+c&d",
            connectionName: "my app",
            webSocketImpl: server.constructorFn,
        });
        await client.connect();
        const url = new URL(server.last.url);
        assert.equal(url.pathname, "/ws");
        assert.deepEqual(url.searchParams.getAll("api-key"), ["a b+c&d"]);
        assert.equal(url.searchParams.get("name"), "my app");
        assert.equal(url.searchParams.get("x"), "1");
        assert.match(server.last.url, /api-key=a\+b%2Bc%26d/);
        client.close();

        const unnamed = new FluxionDBClient({ url: "ws://h:1", apiKey: "k", webSocketImpl: server.constructorFn });
        await unnamed.connect();
        assert.equal(new URL(server.last.url).searchParams.has("name"), false);
        unnamed.close();
    });
});

describe("resolved values and errors", () => {
    it("resolves to the member of the response that each method returns", async () => {
        const answers: { [type: string]: object } = {
            cols: { collections: ["a", "b"] },
            conn: { connections: [{ ip: "127.0.0.1", since: 5, name: null, self: true }] },
            qry: { records: { d: { ts: 1, data: "x" } } },
            qdoc: { records: [{ ts: 1, data: "x" }] },
            gval: { value: "v" },
            gkeys: { keys: ["k"] },
            gvalues: { values: { k: "v" } },
            gvals: { values: { k: "v", l: "w" } },
            keys: { status: "ok", keys: [{ key: "master-key", scope: "read_write_delete", deletable: false }] },
        };
        const { client } = setup((frame) => ({ id: frame.id, ...answers[frame.type] }));
        assert.deepEqual(await client.fetchCollections(), ["a", "b"]);
        assert.deepEqual(await client.getConnections(), [{ ip: "127.0.0.1", since: 5, name: null, self: true }]);
        assert.deepEqual(await client.fetchLatestRecords({ col: "c", ts: 1 }), { d: { ts: 1, data: "x" } });
        assert.deepEqual(await client.fetchDocument({ col: "c", doc: "d", from: 0, to: 1 }), [{ ts: 1, data: "x" }]);
        assert.deepEqual(await client.fetchRecords({ col: "c", doc: "d", from: 0, to: 1 }), [{ ts: 1, data: "x" }]);
        assert.equal(await client.getValue({ col: "c", key: "k" }), "v");
        assert.deepEqual(await client.getKeys({ col: "c" }), ["k"]);
        assert.deepEqual(await client.getValues({ col: "c", key: "k" }), { k: "v" });
        assert.deepEqual(await client.getValues({ col: "c" }), { k: "v", l: "w" });
        assert.deepEqual(await client.listApiKeys(), [{ key: "master-key", scope: "read_write_delete", deletable: false }]);
        const inserted = (await client.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "c" })) as { id: string };
        assert.equal(typeof inserted.id, "string");
        assert.deepEqual(Object.keys(inserted), ["id"]);
        assert.equal(await client.deleteCollection({ col: "c" }), undefined);
        assert.equal(await client.setValue({ col: "c", key: "k", value: "v" }), undefined);
        const added = await client.addApiKey({ key: "n", scope: "readonly" });
        assert.equal(added.status, "ok");
        assert.equal(typeof added.id, "string");
        client.close();
    });

    it("rejects with the server's error text, except addApiKey/removeApiKey which resolve with it", async () => {
        const { client } = setup((frame) => ({ id: frame.id, error: `refused ${frame.type}` }));
        await assert.rejects(client.fetchCollections(), { message: "refused cols" });
        await assert.rejects(client.deleteCollection({ col: "c" }), { message: "refused dcol" });
        await assert.rejects(client.insertMultipleRecords([]), { message: "refused ins" });
        await assert.rejects(client.getValue({ col: "c", key: "k" }), { message: "refused gval" });
        await assert.rejects(client.listApiKeys(), { message: "refused keys" });
        const added = await client.addApiKey({ key: "n", scope: "readonly" });
        assert.equal(added.error, "refused keys");
        const removed = await client.removeApiKey({ key: "n" });
        assert.equal(removed.error, "refused keys");
        client.close();
    });

    it("rejects at once when the payload cannot be serialised", async () => {
        const { client, server } = setup();
        await assert.rejects(client.insertSingleRecord({ ts: 1n, doc: "d", data: "x", col: "c" } as never), TypeError);
        assert.equal(server.frames.length, 0);
        client.close();
    });
});
