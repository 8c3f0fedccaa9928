package fluxiondb

import "context"

// FetchCollections returns the names of every collection.
func (c *Client) FetchCollections() ([]string, error) {
	return c.FetchCollectionsContext(context.Background())
}

// FetchCollectionsContext is FetchCollections bounded by ctx.
func (c *Client) FetchCollectionsContext(ctx context.Context) ([]string, error) {
	var resp CollectionsResponse
	if err := c.do(ctx, "cols", emptyPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Collections, nil
}

// FetchLatestRecords returns, for each selected document, its latest record
// at or before params.TS, keyed by document name.
func (c *Client) FetchLatestRecords(params FetchLatestRecordsParams) (map[string]RecordResponse, error) {
	return c.FetchLatestRecordsContext(context.Background(), params)
}

// FetchLatestRecordsContext is FetchLatestRecords bounded by ctx.
func (c *Client) FetchLatestRecordsContext(ctx context.Context, params FetchLatestRecordsParams) (map[string]RecordResponse, error) {
	var resp QueryResponse
	if err := c.do(ctx, "qry", params, &resp); err != nil {
		return nil, err
	}
	return resp.Records, nil
}

// FetchDocument returns the records of one document in a time range,
// oldest first (newest first when params.Reverse is true).
func (c *Client) FetchDocument(params FetchRecordsParams) ([]RecordResponse, error) {
	return c.FetchDocumentContext(context.Background(), params)
}

// FetchDocumentContext is FetchDocument bounded by ctx.
func (c *Client) FetchDocumentContext(ctx context.Context, params FetchRecordsParams) ([]RecordResponse, error) {
	var resp QueryCollectionResponse
	if err := c.do(ctx, "qdoc", params, &resp); err != nil {
		return nil, err
	}
	return resp.Records, nil
}

// InsertMultipleRecords inserts the records in one request. A record at an
// existing (collection, document, timestamp) replaces the stored data. The
// server checks the whole batch first: if any record is invalid, nothing is
// inserted. A nil slice is sent as JSON null, which the server refuses.
func (c *Client) InsertMultipleRecords(items []InsertMessageRequest) error {
	return c.InsertMultipleRecordsContext(context.Background(), items)
}

// InsertMultipleRecordsContext is InsertMultipleRecords bounded by ctx.
func (c *Client) InsertMultipleRecordsContext(ctx context.Context, items []InsertMessageRequest) error {
	return c.do(ctx, "ins", items, nil)
}

// InsertSingleDocumentRecord inserts one record.
func (c *Client) InsertSingleDocumentRecord(item InsertMessageRequest) error {
	return c.InsertSingleDocumentRecordContext(context.Background(), item)
}

// InsertSingleDocumentRecordContext is InsertSingleDocumentRecord bounded by
// ctx.
func (c *Client) InsertSingleDocumentRecordContext(ctx context.Context, item InsertMessageRequest) error {
	return c.do(ctx, "ins", []InsertMessageRequest{item}, nil)
}

// DeleteCollection deletes a collection with all its documents and
// key/value entries. Deleting an unknown collection is not an error.
func (c *Client) DeleteCollection(params DeleteCollectionParams) error {
	return c.DeleteCollectionContext(context.Background(), params)
}

// DeleteCollectionContext is DeleteCollection bounded by ctx.
func (c *Client) DeleteCollectionContext(ctx context.Context, params DeleteCollectionParams) error {
	return c.do(ctx, "dcol", params, nil)
}

// DeleteDocument deletes every record of a document.
//
// Caution: when params.Col is empty the document is deleted from every
// collection (the wire behaviour of the official SDK, kept for
// compatibility).
func (c *Client) DeleteDocument(params DeleteDocumentParams) error {
	return c.DeleteDocumentContext(context.Background(), params)
}

// DeleteDocumentContext is DeleteDocument bounded by ctx.
func (c *Client) DeleteDocumentContext(ctx context.Context, params DeleteDocumentParams) error {
	return c.do(ctx, "ddoc", params, nil)
}

// DeleteDocumentRecord deletes the record at exactly params.TS. Deleting a
// record that does not exist is not an error.
func (c *Client) DeleteDocumentRecord(params DeleteRecord) error {
	return c.DeleteDocumentRecordContext(context.Background(), params)
}

// DeleteDocumentRecordContext is DeleteDocumentRecord bounded by ctx.
func (c *Client) DeleteDocumentRecordContext(ctx context.Context, params DeleteRecord) error {
	return c.do(ctx, "drec", params, nil)
}

// DeleteMultipleRecords deletes several records in one request. A nil slice
// is sent as JSON null, which the server refuses.
func (c *Client) DeleteMultipleRecords(params []DeleteRecord) error {
	return c.DeleteMultipleRecordsContext(context.Background(), params)
}

// DeleteMultipleRecordsContext is DeleteMultipleRecords bounded by ctx.
func (c *Client) DeleteMultipleRecordsContext(ctx context.Context, params []DeleteRecord) error {
	return c.do(ctx, "dmrec", params, nil)
}

// DeleteRecordsRange deletes the records of one document with
// params.FromTS <= ts <= params.ToTS.
func (c *Client) DeleteRecordsRange(params DeleteRecordsRange) error {
	return c.DeleteRecordsRangeContext(context.Background(), params)
}

// DeleteRecordsRangeContext is DeleteRecordsRange bounded by ctx.
func (c *Client) DeleteRecordsRangeContext(ctx context.Context, params DeleteRecordsRange) error {
	return c.do(ctx, "drrng", params, nil)
}
