package fluxiondb_test

import (
	"testing"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// Invalid payloads come back as *ServerError with the server's text; the
// connection stays usable and nothing changes.
func TestInvalidPayloads(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)

	type check struct {
		name string
		err  error
		msg  string
	}
	_, qryErr := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 0})
	_, qdocErr := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "d", From: 10, To: 5})
	_, qdocDocErr := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", To: 5})
	_, gvalErr := c.GetValue(fluxiondb.GetValueParams{Col: "config"})
	_, gkeysErr := c.GetKeys(fluxiondb.CollectionParam{})
	_, gvalsErr := c.GetValues(fluxiondb.GetValuesParams{})
	checks := []check{
		{"insert nil", c.InsertMultipleRecords(nil), "invalid payload: expected a JSON array"},
		{"insert ts 0", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Doc: "d", Data: "x", Col: "sensors"}),
			"invalid payload: [0].ts must be a positive integer"},
		{"insert empty doc", c.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{
			{TS: 1, Doc: "ok", Data: "x", Col: "sensors"}, {TS: 1, Data: "x", Col: "sensors"}}),
			"invalid payload: [1].doc must be a non-empty string"},
		{"insert empty col", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: 1, Doc: "d"}),
			"invalid payload: [0].col must be a non-empty string"},
		{"qry ts 0", qryErr, "invalid payload: ts must be a positive integer"},
		{"qdoc inverted", qdocErr, "invalid payload: from must not be greater than to"},
		{"qdoc no doc", qdocDocErr, "invalid payload: doc must be a non-empty string"},
		{"dcol empty", c.DeleteCollection(fluxiondb.DeleteCollectionParams{}), "invalid payload: col must be a non-empty string"},
		{"ddoc empty", c.DeleteDocument(fluxiondb.DeleteDocumentParams{Col: "sensors"}), "invalid payload: doc must be a non-empty string"},
		{"drec ts 0", c.DeleteDocumentRecord(fluxiondb.DeleteRecord{Col: "sensors", Doc: "d"}), "invalid payload: ts must be a positive integer"},
		{"dmrec nil", c.DeleteMultipleRecords(nil), "invalid payload: expected a JSON array"},
		{"dmrec element", c.DeleteMultipleRecords([]fluxiondb.DeleteRecord{{Col: "sensors", Doc: "d", TS: 1}, {Col: "sensors", TS: 1}}),
			"invalid payload: [1].doc must be a non-empty string"},
		{"drrng inverted", c.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "sensors", Doc: "d", FromTS: 9, ToTS: 3}),
			"invalid payload: fromTs must not be greater than toTs"},
		{"sval empty value", c.SetValue(fluxiondb.SetValueParams{Col: "config", Key: "k"}), "invalid payload: value must be a non-empty string"},
		{"gval no key", gvalErr, "invalid payload: key must be a non-empty string"},
		{"gkeys no col", gkeysErr, "invalid payload: col must be a non-empty string"},
		{"gvals no col", gvalsErr, "invalid payload: col must be a non-empty string"},
		{"rval no key", c.DeleteValue(fluxiondb.DeleteValueParams{Col: "config"}), "invalid payload: key must be a non-empty string"},
	}
	for _, ch := range checks {
		wantServerError(t, ch.name, ch.err, ch.msg)
	}

	// Nothing was stored, and the connection still works.
	cols, err := c.FetchCollections()
	must(t, "FetchCollections", err)
	if len(cols) != 0 {
		t.Fatalf("invalid requests created collections: %v", cols)
	}
}
