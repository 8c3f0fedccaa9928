// Package entry: the client class and the public types (as in the official SDK).

export { FluxionDBClient } from "./client.js";
export type { ConnectionClosedError } from "./errors.js";
export type { FluxionDBClientOptions } from "./options.js";
export type {
    DeletePush,
    HandlerErrorListener,
    Subscription,
    PushedRecord,
    RecordPush,
    SubscribeParams,
    SubscriptionEnded,
    SubscriptionEvent,
    SubscriptionHandler,
    SubscriptionResumed,
} from "./subscriptions.js";
export type { WebSocketConstructorLike, WebSocketLike } from "./websocket.js";
export type {
    AddApiKeyParams,
    ApiKeyEntry,
    ApiKeyScope,
    CollectionParam,
    CollectionsResponse,
    ConnectionInfo,
    ConnectionsResponse,
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
    InsertMessageResponse,
    KeyValueAllKeysResponse,
    KeyValueAllValuesResponse,
    KeyValueResponse,
    ManageApiKeyResponse,
    QueryCollectionResponse,
    QueryResponse,
    RemoveApiKeyParams,
    SetValueParams,
} from "./types.js";
