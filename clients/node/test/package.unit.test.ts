// Packaging guarantees: no runtime dependencies, and library code that only imports its own
// modules (nothing Node-specific), so it works in browser bundles.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as entry from "../dist/index.js";

const root = new URL("../", import.meta.url);

describe("package", () => {
    it("has no runtime dependencies and is an ES module with types", () => {
        const manifest = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
        assert.equal(manifest.name, "fluxiondb-client");
        assert.equal(manifest.type, "module");
        assert.equal(manifest.main, "./dist/index.js");
        assert.equal(manifest.types, "./dist/index.d.ts");
        assert.equal(manifest.dependencies, undefined);
        assert.equal(manifest.peerDependencies, undefined);
    });

    it("exports exactly one value, the class FluxionDBClient, and no default", () => {
        assert.deepEqual(Object.keys(entry), ["FluxionDBClient"]);
        assert.equal(typeof entry.FluxionDBClient, "function");
    });

    it("library code imports only its own modules and uses no Node-only globals", () => {
        const dist = new URL("dist/", root);
        const files = readdirSync(dist).filter((name) => name.endsWith(".js"));
        assert.ok(files.length > 5);
        for (const name of files) {
            const source = readFileSync(new URL(name, dist), "utf8");
            for (const match of source.matchAll(/\bfrom\s+["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']/g)) {
                const specifier = match[1] ?? match[2]!;
                assert.match(specifier, /^\.\/[\w-]+\.js$/, `${name} imports ${specifier}`);
            }
            assert.doesNotMatch(source, /\brequire\s*\(|\bprocess\.|\bBuffer\b|__dirname/, `${name} uses a Node-only API`);
        }
    });
});
