// A JSON parser that keeps each number's text, so that `1`, `1.0` and 2^63-1 stay distinct
// and exact when frames are compared with the protocol vectors.

export class JsonNumber {
    constructor(readonly text: string) {}

    get isInteger(): boolean {
        return !/[.eE]/.test(this.text);
    }

    get value(): number {
        return Number(this.text);
    }

    equals(other: JsonNumber): boolean {
        if (this.isInteger !== other.isInteger) return false;
        if (this.isInteger) return BigInt(this.text) === BigInt(other.text);
        return this.value === other.value;
    }

    toJSON(): unknown {
        return this.isInteger && !Number.isSafeInteger(this.value) ? this.text : this.value;
    }
}

export type Json = null | boolean | string | JsonNumber | Json[] | { [member: string]: Json };

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;

export function parseJson(text: string): Json {
    let at = 0;
    const fail = (what: string): never => {
        throw new SyntaxError(`invalid JSON at ${at}: ${what}`);
    };
    const skip = (): void => {
        SPACE.lastIndex = at;
        SPACE.exec(text);
        at = SPACE.lastIndex;
    };
    const token = (pattern: RegExp): string | undefined => {
        pattern.lastIndex = at;
        const match = pattern.exec(text);
        if (match === null) return undefined;
        at = pattern.lastIndex;
        return match[0];
    };
    const value = (): Json => {
        skip();
        const c = text[at];
        if (c === "{") {
            at++;
            const object: { [member: string]: Json } = Object.create(null);
            skip();
            if (text[at] === "}") {
                at++;
                return object;
            }
            for (;;) {
                skip();
                const key = token(STRING) ?? fail("expected a member name");
                skip();
                if (text[at++] !== ":") fail("expected ':'");
                object[JSON.parse(key) as string] = value();
                skip();
                const next = text[at++];
                if (next === "}") return object;
                if (next !== ",") fail("expected ',' or '}'");
            }
        }
        if (c === "[") {
            at++;
            const array: Json[] = [];
            skip();
            if (text[at] === "]") {
                at++;
                return array;
            }
            for (;;) {
                array.push(value());
                skip();
                const next = text[at++];
                if (next === "]") return array;
                if (next !== ",") fail("expected ',' or ']'");
            }
        }
        if (c === '"') return JSON.parse(token(STRING) ?? fail("bad string")) as string;
        if (text.startsWith("true", at)) {
            at += 4;
            return true;
        }
        if (text.startsWith("false", at)) {
            at += 5;
            return false;
        }
        if (text.startsWith("null", at)) {
            at += 4;
            return null;
        }
        return new JsonNumber(token(NUMBER) ?? fail("unexpected character"));
    };
    const result = value();
    skip();
    if (at !== text.length) fail("trailing characters");
    return result;
}

export function isObject(value: Json | undefined): value is { [member: string]: Json } {
    return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber);
}

export function show(value: Json | undefined): string {
    return value === undefined ? "(nothing)" : JSON.stringify(value);
}
