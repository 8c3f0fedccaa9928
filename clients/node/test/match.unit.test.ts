// The vector matcher itself: strict types, exact big integers, placeholders, $close.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseJson } from "./support/json.js";
import { mismatch } from "./support/match.js";
import { frameMismatch } from "./support/vectors.js";

const check = (expected: string, actual: string) => mismatch(parseJson(expected), parseJson(actual));

describe("vector matcher", () => {
    it("compares strictly: types, member sets, array order, exact integers", () => {
        assert.equal(check('{"a":1,"b":[1,2]}', '{"b":[1,2],"a":1}'), undefined);
        assert.match(check('{"a":1}', '{"a":1.0}')!, /\$\.a/);
        assert.match(check('{"a":1}', '{"a":true}')!, /\$\.a/);
        assert.match(check('{"a":1}', '{"a":1,"b":2}')!, /unexpected member "b"/);
        assert.match(check('{"a":1,"b":2}', '{"a":1}')!, /member "b" missing/);
        assert.match(check("[1,2]", "[2,1]")!, /\$\[0\]/);
        assert.equal(check("9223372036854775807", "9223372036854775807"), undefined);
        assert.ok(check("9223372036854775807", "9223372036854775806") !== undefined);
        assert.equal(check('"\\u00e9\\n"', '"é\\n"'), undefined);
    });

    it("supports $any with bounds and $contains with distinct elements", () => {
        assert.equal(check('{"s":{"$any":"integer","$min":0}}', '{"s":5}'), undefined);
        assert.ok(check('{"s":{"$any":"integer","$min":0}}', '{"s":-1}') !== undefined);
        assert.ok(check('{"s":{"$any":"integer"}}', '{"s":5.5}') !== undefined);
        assert.ok(check('{"s":{"$any":"string"}}', '{"s":null}') !== undefined);
        assert.equal(check('{"$contains":[{"n":{"$any":"any"}},{"n":1}]}', '[{"n":2},{"n":1}]'), undefined);
        assert.ok(check('{"$contains":[{"n":1},{"n":1}]}', '[{"n":1},{"n":2}]') !== undefined);
    });

    it("matches close frames by code and, when given, reason", () => {
        const close = parseJson('{"$close":{"code":1008,"reason":"Unknown API key"}}');
        assert.equal(frameMismatch(close, { kind: "close", code: 1008, reason: "Unknown API key" }), undefined);
        assert.ok(frameMismatch(close, { kind: "close", code: 1008, reason: "other" }) !== undefined);
        assert.ok(frameMismatch(close, { kind: "text", text: "{}" }) !== undefined);
        const anyReason = parseJson('{"$close":{"code":1007}}');
        assert.equal(frameMismatch(anyReason, { kind: "close", code: 1007, reason: "whatever" }), undefined);
        assert.ok(frameMismatch(parseJson('{"id":"x"}'), { kind: "close", code: 1000, reason: "" }) !== undefined);
    });
});
