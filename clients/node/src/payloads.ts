// Payload shapes sent for the methods whose payload is not the caller's object verbatim
// (as the official Node SDK sends them).

import type { FetchLatestRecordsParams, GetValuesParams } from "./types.js";

/** `qry`: always `col`, `ts`, `doc` (default `""`) and `from` (default `0`); `where`/`filter` only when defined. */
export function latestRecordsPayload(params: FetchLatestRecordsParams): object {
    const payload: { [member: string]: unknown } = {
        col: params.col,
        ts: params.ts,
        doc: params.doc ?? "",
        from: params.from ?? 0,
    };
    if (params.where !== undefined) payload.where = params.where;
    if (params.filter !== undefined) payload.filter = params.filter;
    return payload;
}

/** `gvalues` when a non-empty key is given, otherwise `gvals` (every entry). */
export function valuesMessageType(params: GetValuesParams): "gvalues" | "gvals" {
    return typeof params.key === "string" && params.key !== "" ? "gvalues" : "gvals";
}
