// The public client. Method names, parameters and resolved values match the official
// `@volandoo/fluxiondb-client`; failures reject instead of resolving.

import { createLogger } from "./logger.js";
import { resolveOptions, type FluxionDBClientOptions } from "./options.js";
import { latestRecordsPayload, valuesMessageType } from "./payloads.js";
import type { ServerResponse } from "./pending.js";
import { Subscriptions, type SubscribeParams, type Subscription, type SubscriptionHandler } from "./subscriptions.js";
import { Transport } from "./transport.js";
import type {
    AddApiKeyParams,
    ApiKeyEntry,
    CollectionParam,
    ConnectionInfo,
    DeleteCollectionParams,
    DeleteDocumentParams,
    DeleteRecord,
    DeleteRecordsRange,
    DeleteValueParams,
    FetchLatestRecordsParams,
    FetchRecordsParams,
    GetValueParams,
    GetValuesParams,
    InsertMessageRequest,
    ManageApiKeyParams,
    ManageApiKeyResponse,
    RemoveApiKeyParams,
    SetValueParams,
} from "./types.js";

/** Rejects with the server's error text when the response carries `error`. */
function checked(response: ServerResponse): ServerResponse {
    if (response.error !== undefined) {
        throw new Error(typeof response.error === "string" ? response.error : JSON.stringify(response.error));
    }
    return response;
}

export class FluxionDBClient {
    private readonly transport: Transport;
    private readonly subscriptions: Subscriptions;

    constructor(options: FluxionDBClientOptions) {
        const resolved = resolveOptions(options);
        const log = createLogger(resolved.showLogs);
        this.transport = new Transport(resolved, log);
        this.subscriptions = new Subscriptions(this.transport, log, resolved.onHandlerError);
    }

    /**
     * Starts a live subscription: `handler` receives every write the server applies to `col`
     * that `params` select (`rec` and `del` events, in apply order), `reconnected` when the
     * server took it back on a new connection (the missed writes follow), and `subend` when it
     * ended (with `resumeLost` set when the state must be re-read). Resolves once the server took
     * it; the handler runs only after that. Its errors go to the `onHandlerError` option, else
     * are rethrown as uncaught exceptions.
     */
    async subscribe(params: SubscribeParams, handler: SubscriptionHandler): Promise<Subscription> {
        return this.subscriptions.subscribe(params, handler);
    }

    /**
     * Opens the connection and waits for the server's `ready` frame. Every method calls it
     * implicitly, so calling it first is optional. Concurrent calls share one attempt.
     */
    async connect(): Promise<void> {
        return this.transport.connect();
    }

    /** Closes the connection and rejects every pending request. The client can be used again. */
    close(): void {
        this.subscriptions.clear();
        this.transport.close();
    }

    /** Alias of close(). */
    disconnect(): void {
        this.close();
    }

    private async call(type: string, payload: unknown): Promise<ServerResponse> {
        return checked(await this.transport.request(type, payload));
    }

    async fetchCollections(): Promise<string[]> {
        return (await this.call("cols", {})).collections as string[];
    }

    async getConnections(): Promise<ConnectionInfo[]> {
        return (await this.call("conn", {})).connections as ConnectionInfo[];
    }

    async deleteCollection(params: DeleteCollectionParams): Promise<void> {
        await this.call("dcol", params);
    }

    async fetchLatestRecords(
        params: FetchLatestRecordsParams,
    ): Promise<{ [doc: string]: { ts: number; data: string } }> {
        const response = await this.call("qry", latestRecordsPayload(params));
        return response.records as { [doc: string]: { ts: number; data: string } };
    }

    /** Inserts records; resolves with the raw response `{ id }`. */
    async insertMultipleRecords(items: InsertMessageRequest[]): Promise<unknown> {
        return this.call("ins", items);
    }

    /** Inserts one record; resolves with the raw response `{ id }`. */
    async insertSingleRecord(items: InsertMessageRequest): Promise<unknown> {
        return this.call("ins", [items]);
    }

    async fetchDocument(params: FetchRecordsParams): Promise<{ ts: number; data: string }[]> {
        return (await this.call("qdoc", params)).records as { ts: number; data: string }[];
    }

    /** Alias of fetchDocument(). */
    async fetchRecords(params: FetchRecordsParams): Promise<{ ts: number; data: string }[]> {
        return this.fetchDocument(params);
    }

    async deleteDocument(params: DeleteDocumentParams): Promise<void> {
        await this.call("ddoc", params);
    }

    async deleteRecord(params: DeleteRecord): Promise<void> {
        await this.call("drec", params);
    }

    async deleteMultipleRecords(params: DeleteRecord[]): Promise<void> {
        await this.call("dmrec", params);
    }

    async deleteRecordsRange(params: DeleteRecordsRange): Promise<void> {
        await this.call("drrng", params);
    }

    async setValue(params: SetValueParams): Promise<void> {
        await this.call("sval", params);
    }

    async getValue(params: GetValueParams): Promise<string> {
        return (await this.call("gval", params)).value as string;
    }

    async getKeys(params: CollectionParam): Promise<string[]> {
        return (await this.call("gkeys", params)).keys as string[];
    }

    async getValues(params: GetValuesParams): Promise<{ [key: string]: string }> {
        return (await this.call(valuesMessageType(params), params)).values as { [key: string]: string };
    }

    async deleteValue(params: DeleteValueParams): Promise<void> {
        await this.call("rval", params);
    }

    /** Alias of deleteValue(). */
    async removeValue(params: DeleteValueParams): Promise<void> {
        return this.deleteValue(params);
    }

    /**
     * Adds or re-scopes an API key (master key only). Resolves with the whole response:
     * inspect `response.error` (server refusals do not reject, as in the official SDK).
     */
    async addApiKey(params: AddApiKeyParams): Promise<ManageApiKeyResponse> {
        const payload: ManageApiKeyParams = { action: "add", key: params.key, scope: params.scope };
        return (await this.transport.request("keys", payload)) as unknown as ManageApiKeyResponse;
    }

    /** Removes an API key (master key only). Resolves with the whole response, like addApiKey(). */
    async removeApiKey(params: RemoveApiKeyParams): Promise<ManageApiKeyResponse> {
        const payload: ManageApiKeyParams = { action: "remove", key: params.key };
        return (await this.transport.request("keys", payload)) as unknown as ManageApiKeyResponse;
    }

    /** Lists every API key, the master key included (master key only). Rejects on a server error. */
    async listApiKeys(): Promise<ApiKeyEntry[]> {
        const payload: ManageApiKeyParams = { action: "list", key: "" };
        return ((await this.call("keys", payload)).keys as ApiKeyEntry[] | undefined) ?? [];
    }
}
