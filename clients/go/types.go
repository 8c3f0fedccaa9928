package fluxiondb

// This file holds the request and response types of the FluxionDB wire
// protocol. Their names, field names, field types and JSON tags are those of
// the official Go SDK, so that code written against it compiles unchanged.

// InsertMessageRequest is one record to insert: the record of document Doc in
// collection Col at timestamp TS. Data is an opaque string (often JSON text).
// Inserting at an existing (Col, Doc, TS) replaces the data.
type InsertMessageRequest struct {
	TS   int64  `json:"ts"`
	Doc  string `json:"doc"`
	Data string `json:"data"`
	Col  string `json:"col"`
}

// ApiKeyScope is the permission level of a scoped API key.
type ApiKeyScope string

// The three scopes a scoped API key can have. The server also accepts
// aliases such as "read-only" or "Read Write", but always reports these
// canonical names.
const (
	// ApiKeyScopeReadOnly allows reads only.
	ApiKeyScopeReadOnly ApiKeyScope = "readonly"
	// ApiKeyScopeReadWrite allows reads, inserts and setting values.
	ApiKeyScopeReadWrite ApiKeyScope = "read_write"
	// ApiKeyScopeReadWriteDelete also allows every kind of deletion.
	ApiKeyScopeReadWriteDelete ApiKeyScope = "read_write_delete"
)

// ManageAPIKeyParams is the payload of a "keys" request. Most callers use
// AddAPIKey, RemoveAPIKey and ListAPIKeys instead of building it themselves.
type ManageAPIKeyParams struct {
	Action string      `json:"action"`
	Key    string      `json:"key"`
	Scope  ApiKeyScope `json:"scope,omitempty"`
}

// APIKeyInfo describes one API key as returned by ListAPIKeys. Deletable is
// false for the master key.
type APIKeyInfo struct {
	Key       string `json:"key"`
	Scope     string `json:"scope"`
	Deletable bool   `json:"deletable"`
}

// ManageAPIKeyResponse is the server's answer to a "keys" request. Error is
// set when the server refused the request; Status is "ok" otherwise.
type ManageAPIKeyResponse struct {
	ID     string       `json:"id"`
	Status string       `json:"status,omitempty"`
	Error  string       `json:"error,omitempty"`
	Scope  string       `json:"scope,omitempty"`
	Keys   []APIKeyInfo `json:"keys,omitempty"`
}

// InsertMessageResponse is the server's answer to an insert.
type InsertMessageResponse struct {
	ID string `json:"id"`
}

// QueryResponse is the server's answer to a latest-records query: the
// selected record of each matching document, by document name.
type QueryResponse struct {
	ID      string                    `json:"id"`
	Records map[string]RecordResponse `json:"records"`
}

// RecordResponse is one stored record.
type RecordResponse struct {
	TS   int64  `json:"ts"`
	Data string `json:"data"`
}

// QueryCollectionResponse is the server's answer to a document query.
type QueryCollectionResponse struct {
	ID      string           `json:"id"`
	Records []RecordResponse `json:"records"`
}

// CollectionsResponse is the server's answer to a collection listing.
type CollectionsResponse struct {
	ID          string   `json:"id"`
	Collections []string `json:"collections"`
}

// ConnectionInfo describes one open connection to the server. Since is the
// number of milliseconds the connection has been open. Name is the label the
// connection was opened with, or nil when it had none. Self is true for the
// connection that asked.
type ConnectionInfo struct {
	IP    string  `json:"ip"`
	Since int64   `json:"since"`
	Self  bool    `json:"self"`
	Name  *string `json:"name"`
}

// ConnectionsResponse is the server's answer to a connection listing.
type ConnectionsResponse struct {
	ID          string           `json:"id"`
	Connections []ConnectionInfo `json:"connections"`
}

// KeyValueResponse is the server's answer to GetValue. An empty Value means
// the key does not exist (the server never stores an empty value).
type KeyValueResponse struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// KeyValueAllKeysResponse is the server's answer to GetKeys.
type KeyValueAllKeysResponse struct {
	ID   string   `json:"id"`
	Keys []string `json:"keys"`
}

// KeyValueAllValuesResponse is the server's answer to GetValues.
type KeyValueAllValuesResponse struct {
	ID     string            `json:"id"`
	Values map[string]string `json:"values"`
}

// CollectionParam names a collection.
type CollectionParam struct {
	Col string `json:"col"`
}

// FetchLatestRecordsParams selects, for each document of collection Col, the
// latest record at or before TS.
//
// Doc restricts the query to one document, or to the documents whose name
// matches a "/pattern/flags" regular expression; empty means every document.
// From, when set and non-zero, drops documents whose selected record is older
// than *From. Where keeps only records whose data matches it, Filter drops
// records whose data matches it (a substring, or a "/pattern/flags").
type FetchLatestRecordsParams struct {
	Col    string `json:"col"`
	TS     int64  `json:"ts"`
	Doc    string `json:"doc,omitempty"`
	From   *int64 `json:"from,omitempty"`
	Where  string `json:"where,omitempty"`
	Filter string `json:"filter,omitempty"`
}

// DeleteCollectionParams names the collection to delete.
type DeleteCollectionParams struct {
	Col string `json:"col"`
}

// FetchRecordsParams selects the records of one document with
// From <= ts <= To (both inclusive).
//
// Limit, when set and positive, caps the number of records returned. Reverse,
// when set and true, returns the newest records first. Where and Filter work
// as in FetchLatestRecordsParams and are applied before Limit.
type FetchRecordsParams struct {
	Col     string `json:"col"`
	Doc     string `json:"doc"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Limit   *int   `json:"limit,omitempty"`
	Reverse *bool  `json:"reverse,omitempty"`
	Where   string `json:"where,omitempty"`
	Filter  string `json:"filter,omitempty"`
}

// DeleteDocumentParams names a document to delete.
//
// Caution: Col is always sent, and an empty Col deletes the document from
// every collection (wire compatible with the official SDK).
type DeleteDocumentParams struct {
	Doc string `json:"doc"`
	Col string `json:"col"`
}

// DeleteRecord names the record of document Doc in collection Col at
// timestamp TS.
type DeleteRecord struct {
	Doc string `json:"doc"`
	Col string `json:"col"`
	TS  int64  `json:"ts"`
}

// DeleteRecordsRange names the records of one document with
// FromTS <= ts <= ToTS (both inclusive).
type DeleteRecordsRange struct {
	Doc    string `json:"doc"`
	Col    string `json:"col"`
	FromTS int64  `json:"fromTs"`
	ToTS   int64  `json:"toTs"`
}

// SetValueParams sets key Key of collection Col to Value (which must not be
// empty).
type SetValueParams struct {
	Col   string `json:"col"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// GetValueParams names one key of a collection.
type GetValueParams struct {
	Col string `json:"col"`
	Key string `json:"key"`
}

// GetValuesParams selects key/value entries of collection Col. When Key is
// nil or empty every entry is returned; otherwise Key is an exact key or a
// "/pattern/flags" regular expression matched against the keys.
type GetValuesParams struct {
	Col string  `json:"col"`
	Key *string `json:"key,omitempty"`
}

// DeleteValueParams names the key/value entry to delete.
type DeleteValueParams struct {
	Col string `json:"col"`
	Key string `json:"key"`
}

// WebSocketResponse is the part every response shares: the id of the
// request it answers.
type WebSocketResponse struct {
	ID string `json:"id"`
}

// WebSocketMessage is the request envelope: Data holds the JSON text of the
// type-specific payload.
type WebSocketMessage struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}
