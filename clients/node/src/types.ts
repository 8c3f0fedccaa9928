// Public request and response types. Names and members match the official
// `@volandoo/fluxiondb-client` so that existing code compiles unchanged.

/** Scope of an API key. The server also accepts aliases such as `read-only`. */
export type ApiKeyScope = "readonly" | "read_write" | "read_write_delete";

/** One record to insert. `data` is an opaque string (often JSON text). */
export interface InsertMessageRequest {
    ts: number;
    doc: string;
    data: string;
    col: string;
}

export interface AddApiKeyParams {
    key: string;
    scope: ApiKeyScope;
}

export interface RemoveApiKeyParams {
    key: string;
}

/** Internal shape of the `keys` payload (not exported from the package entry). */
export interface ManageApiKeyParams {
    action: "add" | "remove" | "list";
    key: string;
    scope?: ApiKeyScope;
}

/** One entry of a `keys list` answer. */
export interface ApiKeyEntry {
    key: string;
    scope: ApiKeyScope;
    deletable: boolean;
}

/** Full answer to a `keys` request; `error` is set when the server refused it. */
export interface ManageApiKeyResponse {
    id: string;
    status?: string;
    error?: string;
    scope?: string;
    keys?: ApiKeyEntry[];
}

export interface InsertMessageResponse {
    id: string;
}

export interface QueryResponse {
    id: string;
    records: { [key: string]: { ts: number; data: string } };
}

export interface QueryCollectionResponse {
    id: string;
    records: { ts: number; data: string }[];
}

export interface CollectionsResponse {
    id: string;
    collections: string[];
}

export interface KeyValueResponse {
    id: string;
    value: string;
}

export interface KeyValueAllKeysResponse {
    id: string;
    keys: string[];
}

export interface KeyValueAllValuesResponse {
    id: string;
    values: { [key: string]: string };
}

/** One open connection as reported by `getConnections()`. `since` is a duration in ms. */
export interface ConnectionInfo {
    ip: string;
    since: number;
    self: boolean;
    name?: string | null;
}

export interface ConnectionsResponse {
    id: string;
    connections: ConnectionInfo[];
}

export interface CollectionParam {
    col: string;
}

/**
 * Latest record of each document at or before `ts`. `doc` may be a literal
 * name or a `/pattern/flags`; `where`/`filter` are data predicates.
 */
export interface FetchLatestRecordsParams {
    col: string;
    ts: number;
    doc?: string;
    from?: number;
    where?: string;
    filter?: string;
}

export interface DeleteCollectionParams {
    col: string;
}

/** Records of one document with `from <= ts <= to`. */
export interface FetchRecordsParams {
    col: string;
    doc: string;
    from: number;
    to: number;
    limit?: number;
    reverse?: boolean;
    where?: string;
    filter?: string;
}

export interface DeleteDocumentParams {
    doc: string;
    col: string;
}

export interface DeleteRecord {
    doc: string;
    col: string;
    ts: number;
}

export interface DeleteRecordsRange {
    doc: string;
    col: string;
    fromTs: number;
    toTs: number;
}

export interface SetValueParams {
    col: string;
    key: string;
    value: string;
}

export interface GetValueParams {
    col: string;
    key: string;
}

/** Without `key` (or with `""`) every entry of the collection is returned. */
export interface GetValuesParams {
    col: string;
    key?: string;
}

export interface DeleteValueParams {
    col: string;
    key: string;
}
