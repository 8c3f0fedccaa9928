// Key/value methods against the real server.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forbidUnhandledRejections, useServer } from "./support/fixture.js";

const fixture = useServer();
forbidUnhandledRejections();

describe("key/value", () => {
    it("sets, reads, lists and deletes values", async () => {
        const client = fixture.client();
        const col = "kv1.config";
        await client.setValue({ col, key: "env.prod", value: "v1" });
        await client.setValue({ col, key: "env.stage", value: "v2" });
        await client.setValue({ col, key: "region", value: "eu" });
        await client.setValue({ col, key: "region", value: "us" });
        assert.equal(await client.getValue({ col, key: "region" }), "us");
        assert.equal(await client.getValue({ col, key: "missing" }), "");
        assert.deepEqual(await client.getKeys({ col }), ["env.prod", "env.stage", "region"]);
        assert.deepEqual(await client.getValues({ col, key: "/^env[.]/" }), { "env.prod": "v1", "env.stage": "v2" });
        assert.deepEqual(await client.getValues({ col, key: "region" }), { region: "us" });
        assert.deepEqual(await client.getValues({ col, key: "nope" }), { nope: "" });
        assert.deepEqual(await client.getValues({ col }), { "env.prod": "v1", "env.stage": "v2", region: "us" });
        assert.deepEqual(await client.getValues({ col, key: "" }), { "env.prod": "v1", "env.stage": "v2", region: "us" });
        await client.deleteValue({ col, key: "env.prod" });
        await client.removeValue({ col, key: "env.stage" });
        assert.deepEqual(await client.getKeys({ col }), ["region"]);
    });

    it("answers empty results for unknown collections and removes an emptied collection", async () => {
        const client = fixture.client();
        assert.deepEqual(await client.getKeys({ col: "kv2.none" }), []);
        assert.deepEqual(await client.getValues({ col: "kv2.none" }), {});
        assert.deepEqual(await client.getValues({ col: "kv2.none", key: "/x/" }), {});
        await client.setValue({ col: "kv2.one", key: "k", value: "v" });
        assert.ok((await client.fetchCollections()).includes("kv2.one"));
        await client.deleteValue({ col: "kv2.one", key: "k" });
        assert.ok(!(await client.fetchCollections()).includes("kv2.one"));
    });
});
