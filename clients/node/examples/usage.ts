// Type-level check (run by `npm run typecheck`): code written for the official
// `@volandoo/fluxiondb-client` must compile unchanged against this package. Every
// exported name is used the way the official SDK's users use it.

import {
    FluxionDBClient,
    type AddApiKeyParams,
    type ApiKeyEntry,
    type ApiKeyScope,
    type CollectionParam,
    type CollectionsResponse,
    type ConnectionInfo,
    type ConnectionsResponse,
    type DeleteCollectionParams,
    type DeleteDocumentParams,
    type DeleteRecord,
    type DeleteRecordsRange,
    type DeleteValueParams,
    type FetchLatestRecordsParams,
    type FetchRecordsParams,
    type GetValueParams,
    type GetValuesParams,
    type InsertMessageRequest,
    type InsertMessageResponse,
    type KeyValueAllKeysResponse,
    type KeyValueAllValuesResponse,
    type KeyValueResponse,
    type ManageApiKeyResponse,
    type QueryCollectionResponse,
    type QueryResponse,
    type RemoveApiKeyParams,
    type SetValueParams,
} from "fluxiondb-client";
// @ts-expect-error -- like the official package, there is no default export.
import DefaultExport from "fluxiondb-client";

void DefaultExport;

/** Compile-time equality of two types. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

type Resolved<M extends keyof FluxionDBClient> = FluxionDBClient[M] extends (...args: never[]) => infer R
    ? Awaited<R>
    : never;

assertType<Equal<Resolved<"connect">, void>>();
assertType<Equal<ReturnType<FluxionDBClient["close"]>, void>>();
assertType<Equal<Resolved<"fetchCollections">, string[]>>();
assertType<Equal<Resolved<"getConnections">, ConnectionInfo[]>>();
assertType<Equal<Resolved<"deleteCollection">, void>>();
assertType<Equal<Resolved<"fetchLatestRecords">, { [doc: string]: { ts: number; data: string } }>>();
assertType<Equal<Resolved<"insertMultipleRecords">, unknown>>();
assertType<Equal<Resolved<"insertSingleRecord">, unknown>>();
assertType<Equal<Resolved<"fetchDocument">, { ts: number; data: string }[]>>();
assertType<Equal<Resolved<"deleteDocument">, void>>();
assertType<Equal<Resolved<"deleteRecord">, void>>();
assertType<Equal<Resolved<"deleteMultipleRecords">, void>>();
assertType<Equal<Resolved<"deleteRecordsRange">, void>>();
assertType<Equal<Resolved<"setValue">, void>>();
assertType<Equal<Resolved<"getValue">, string>>();
assertType<Equal<Resolved<"getKeys">, string[]>>();
assertType<Equal<Resolved<"getValues">, { [key: string]: string }>>();
assertType<Equal<Resolved<"deleteValue">, void>>();
assertType<Equal<Resolved<"addApiKey">, ManageApiKeyResponse>>();
assertType<Equal<Resolved<"removeApiKey">, ManageApiKeyResponse>>();
assertType<Equal<Resolved<"listApiKeys">, ApiKeyEntry[]>>();
assertType<Equal<Parameters<FluxionDBClient["insertMultipleRecords"]>, [items: InsertMessageRequest[]]>>();
assertType<Equal<Parameters<FluxionDBClient["insertSingleRecord"]>, [items: InsertMessageRequest]>>();
assertType<Equal<Parameters<FluxionDBClient["deleteMultipleRecords"]>, [params: DeleteRecord[]]>>();

export async function example(): Promise<void> {
    // Every constructor option of the official SDK, with its type.
    const client = new FluxionDBClient({
        url: "ws://localhost:8080",
        apiKey: "your-secret-key",
        showLogs: false,
        connectionName: "example-app",
        maxReconnectAttempts: 5,
        reconnectInterval: 5000,
        connectTimeout: 10000,
        requestTimeout: 0,
    });
    await client.connect();

    const record: InsertMessageRequest = { ts: Math.floor(Date.now() / 1000), doc: "dev-1", data: '{"t":20}', col: "sensors" };
    const inserted = await client.insertSingleRecord(record);
    console.log((inserted as InsertMessageResponse).id);
    await client.insertMultipleRecords([record, { ...record, ts: record.ts + 1 }]);

    const collections: string[] = await client.fetchCollections();
    const connections: ConnectionInfo[] = await client.getConnections();
    for (const c of connections) console.log(c.ip, c.since, c.self, c.name ?? "(unnamed)");

    const latestParams: FetchLatestRecordsParams = { col: "sensors", ts: record.ts, doc: "/^dev-/", from: 0 };
    const latest = await client.fetchLatestRecords(latestParams);
    const withPredicates = await client.fetchLatestRecords({ col: "sensors", ts: record.ts, where: "/t/", filter: "bad" });
    for (const [doc, { ts, data }] of Object.entries({ ...latest, ...withPredicates })) console.log(doc, ts, data);

    const historyParams: FetchRecordsParams = { col: "sensors", doc: "dev-1", from: 0, to: record.ts, limit: 10, reverse: true };
    const history: { ts: number; data: string }[] = await client.fetchDocument(historyParams);
    console.log(history.length, collections.length);

    const setParams: SetValueParams = { col: "config", key: "region", value: "eu" };
    await client.setValue(setParams);
    const getParams: GetValueParams = { col: "config", key: "region" };
    const value: string = await client.getValue(getParams);
    const keysParams: CollectionParam = { col: "config" };
    const keys: string[] = await client.getKeys(keysParams);
    const valuesParams: GetValuesParams = { col: "config", key: "/^reg/" };
    const values: { [key: string]: string } = await client.getValues(valuesParams);
    const allValues = await client.getValues({ col: "config" });
    console.log(value, keys, values, allValues);
    const deleteValueParams: DeleteValueParams = { col: "config", key: "region" };
    await client.deleteValue(deleteValueParams);

    const deleteRecord: DeleteRecord = { doc: "dev-1", col: "sensors", ts: record.ts };
    await client.deleteRecord(deleteRecord);
    await client.deleteMultipleRecords([deleteRecord]);
    const range: DeleteRecordsRange = { doc: "dev-1", col: "sensors", fromTs: 0 + 1, toTs: record.ts };
    await client.deleteRecordsRange(range);
    const deleteDocument: DeleteDocumentParams = { doc: "dev-1", col: "sensors" };
    await client.deleteDocument(deleteDocument);
    const deleteCollection: DeleteCollectionParams = { col: "sensors" };
    await client.deleteCollection(deleteCollection);

    const scope: ApiKeyScope = "readonly";
    const addParams: AddApiKeyParams = { key: "reader-key", scope };
    const added: ManageApiKeyResponse = await client.addApiKey(addParams);
    if (added.error) console.error(added.error);
    if (added.status === "ok") console.log(added.scope);
    const removeParams: RemoveApiKeyParams = { key: "reader-key" };
    const removed = await client.removeApiKey(removeParams);
    const entries: ApiKeyEntry[] = removed.keys ?? (await client.listApiKeys());
    for (const entry of entries) console.log(entry.key, entry.scope, entry.deletable);

    // Additions of this package: aliases named in the official README.
    await client.fetchRecords(historyParams);
    await client.removeValue(deleteValueParams);
    client.disconnect();
    client.close();
}

// Response types are exported for users who type raw messages themselves.
export type AllResponses =
    | CollectionsResponse
    | ConnectionsResponse
    | InsertMessageResponse
    | KeyValueAllKeysResponse
    | KeyValueAllValuesResponse
    | KeyValueResponse
    | ManageApiKeyResponse
    | QueryCollectionResponse
    | QueryResponse;
