// Matches a parsed frame against an expectation of the protocol vectors (vectors/README.md):
// plain values compare strictly (object member sets equal, arrays in order), with the
// placeholders {"$any": type, "$min", "$max"} and {"$contains": [patterns]}.

import { isObject, JsonNumber, show, type Json } from "./json.js";

/** Undefined when `actual` matches, else a description with the JSON path of the first difference. */
export function mismatch(expected: Json, actual: Json | undefined, path = "$"): string | undefined {
    if (isObject(expected) && "$any" in expected) return matchAny(expected, actual, path);
    if (isObject(expected) && "$contains" in expected) return matchContains(expected.$contains, actual, path);
    if (expected instanceof JsonNumber) {
        return actual instanceof JsonNumber && expected.equals(actual)
            ? undefined
            : `${path}: expected ${show(expected)}, got ${show(actual)}`;
    }
    if (Array.isArray(expected)) {
        if (!Array.isArray(actual)) return `${path}: expected an array, got ${show(actual)}`;
        if (actual.length !== expected.length) {
            return `${path}: expected ${expected.length} elements, got ${actual.length}: ${show(actual)}`;
        }
        for (let i = 0; i < expected.length; i++) {
            const difference = mismatch(expected[i]!, actual[i], `${path}[${i}]`);
            if (difference !== undefined) return difference;
        }
        return undefined;
    }
    if (isObject(expected)) {
        if (!isObject(actual)) return `${path}: expected an object, got ${show(actual)}`;
        for (const key of Object.keys(expected)) {
            if (!(key in actual)) return `${path}: member "${key}" missing in ${show(actual)}`;
            const difference = mismatch(expected[key]!, actual[key], `${path}.${key}`);
            if (difference !== undefined) return difference;
        }
        for (const key of Object.keys(actual)) {
            if (!(key in expected)) return `${path}: unexpected member "${key}" in ${show(actual)}`;
        }
        return undefined;
    }
    return expected === actual ? undefined : `${path}: expected ${show(expected)}, got ${show(actual)}`;
}

function typeOf(value: Json): string {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (value instanceof JsonNumber) return value.isInteger ? "integer" : "number";
    return typeof value;
}

function matchAny(pattern: { [member: string]: Json }, actual: Json | undefined, path: string): string | undefined {
    if (actual === undefined) return `${path}: expected a value, got nothing`;
    const wanted = pattern.$any as string;
    const got = typeOf(actual);
    const ok = wanted === "any" || wanted === got || (wanted === "number" && got === "integer");
    if (!ok) return `${path}: expected any ${wanted}, got ${show(actual)}`;
    if (actual instanceof JsonNumber) {
        const min = pattern.$min;
        const max = pattern.$max;
        if (min instanceof JsonNumber && actual.value < min.value) return `${path}: ${actual.text} is below ${min.text}`;
        if (max instanceof JsonNumber && actual.value > max.value) return `${path}: ${actual.text} is above ${max.text}`;
    }
    return undefined;
}

function matchContains(patterns: Json | undefined, actual: Json | undefined, path: string): string | undefined {
    if (!Array.isArray(patterns)) return `${path}: malformed $contains`;
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${show(actual)}`;
    // Each pattern needs a different element: a small backtracking assignment.
    const used = new Array<boolean>(actual.length).fill(false);
    const assign = (p: number): boolean => {
        if (p === patterns.length) return true;
        for (let i = 0; i < actual.length; i++) {
            if (used[i] || mismatch(patterns[p]!, actual[i], path) !== undefined) continue;
            used[i] = true;
            if (assign(p + 1)) return true;
            used[i] = false;
        }
        return false;
    };
    return assign(0) ? undefined : `${path}: ${show(actual)} does not contain ${show(patterns)}`;
}
