// API keys and permissions against the real server: addApiKey/removeApiKey resolve with the
// whole response, listApiKeys, scoped clients rejected with `permission denied`, revocation.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";
import { settle, within } from "./support/wait.js";

const fixture = useServer();
forbidUnhandledRejections();

describe("API keys", () => {
    it("adds, re-scopes, lists and removes keys", async () => {
        const master = fixture.client();
        const added = await master.addApiKey({ key: "k1.reader", scope: "readonly" });
        assert.deepEqual({ ...added, id: "" }, { id: "", status: "ok", scope: "readonly" });
        const rescoped = await master.addApiKey({ key: "k1.reader", scope: "Read-Write" as never });
        assert.equal(rescoped.scope, "read_write");
        const listed = await master.listApiKeys();
        const mine = listed.filter((entry) => entry.key.startsWith("k1.") || entry.key === fixture.server.key);
        assert.deepEqual(mine, [
            { key: "k1.reader", scope: "read_write", deletable: true },
            { key: fixture.server.key, scope: "read_write_delete", deletable: false },
        ]);
        const removed = await master.removeApiKey({ key: "k1.reader" });
        assert.deepEqual({ ...removed, id: "" }, { id: "", status: "ok" });
        assert.ok(!(await master.listApiKeys()).some((entry) => entry.key === "k1.reader"));
    });

    it("resolves with the server's error for refused key operations", async () => {
        const master = fixture.client();
        assert.equal((await master.addApiKey({ key: "k2.x", scope: "superuser" as never })).error, "invalid scope");
        assert.equal((await master.addApiKey({ key: "", scope: "readonly" })).error, "api key cannot be empty");
        assert.equal((await master.removeApiKey({ key: "k2.never" })).error, "api key not found");
        assert.equal((await master.removeApiKey({ key: fixture.server.key })).error, "api key cannot be removed");
        const again = await master.addApiKey({ key: fixture.server.key, scope: "readonly" });
        assert.equal(again.status, "ok");
        assert.equal(again.scope, "read_write_delete");
    });

    it("rejects what a readonly key may not do with `permission denied`", async () => {
        const master = fixture.client();
        await master.addApiKey({ key: "k3.ro", scope: "readonly" });
        await master.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "k3.col" });
        const reader = fixture.client({ apiKey: "k3.ro" });
        assert.ok((await reader.fetchCollections()).includes("k3.col"));
        assert.deepEqual(await reader.fetchDocument({ col: "k3.col", doc: "d", from: 0, to: 9 }), [{ ts: 1, data: "x" }]);
        await assert.rejects(reader.insertSingleRecord({ ts: 2, doc: "d", data: "y", col: "k3.col" }), {
            message: "permission denied",
        });
        await assert.rejects(reader.insertMultipleRecords([{ ts: 0, doc: "", data: "", col: "" }]), {
            message: "permission denied",
        });
        await assert.rejects(reader.setValue({ col: "k3.col", key: "k", value: "v" }), { message: "permission denied" });
        await assert.rejects(reader.deleteCollection({ col: "k3.col" }), { message: "permission denied" });
        await assert.rejects(reader.deleteValue({ col: "k3.col", key: "k" }), { message: "permission denied" });
        await assert.rejects(reader.listApiKeys(), { message: "permission denied" });
        const refused = await reader.addApiKey({ key: "k3.other", scope: "readonly" });
        assert.equal(refused.error, "permission denied");
        assert.equal(typeof refused.id, "string");
        // The connection stays usable after refusals.
        assert.equal(await reader.getValue({ col: "k3.col", key: "k" }), "");
    });

    it("lets only the master key manage keys, and a read_write key not delete", async () => {
        const master = fixture.client();
        await master.addApiKey({ key: "k4.rwd", scope: "read_write_delete" });
        await master.addApiKey({ key: "k4.rw", scope: "read_write" });
        const admin = fixture.client({ apiKey: "k4.rwd" });
        assert.equal(
            (await admin.addApiKey({ key: "k4.x", scope: "readonly" })).error,
            "only the master key may manage API keys",
        );
        await assert.rejects(admin.listApiKeys(), { message: "only the master key may manage API keys" });
        const writer = fixture.client({ apiKey: "k4.rw" });
        await writer.insertSingleRecord({ ts: 1, doc: "d", data: "x", col: "k4.col" });
        await assert.rejects(writer.deleteRecord({ doc: "d", col: "k4.col", ts: 1 }), { message: "permission denied" });
        await admin.deleteCollection({ col: "k4.col" });
    });

    it("a revoked key's client fails at once instead of retrying", async () => {
        const master = fixture.client();
        await master.addApiKey({ key: "k5.ro", scope: "readonly" });
        const reader = fixture.client({ apiKey: "k5.ro", reconnectInterval: 20, maxReconnectAttempts: 5 });
        await reader.fetchCollections();
        await master.removeApiKey({ key: "k5.ro" });
        // The server closed the reader (1008 API key revoked) and refuses its reconnect. A request
        // made before the client has seen that close is lost with the connection.
        let result = await within(settle(reader.fetchCollections()), 3000, "request with a revoked key");
        if (!result.ok && result.error.message === "WebSocket connection closed before response was received. (close 1008: API key revoked)") {
            result = await within(settle(reader.fetchCollections()), 3000, "second request with a revoked key");
        }
        assert.equal(result.ok, false);
        assert.equal(
            (result as { error: Error }).error.message,
            "Failed to connect before sending: Authentication failed: Unknown API key",
        );
    });
});
