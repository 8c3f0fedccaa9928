package fluxiondb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

func TestContextVariantsAndTimeouts(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	opts := quickOptions("")
	opts.RequestTimeout = 400 * time.Millisecond
	c := connectedClient(t, srv, testserver.MasterKey, opts)
	ctx := ctxTimeout(t, 10*time.Second)

	// The ...Context variants behave like the plain methods.
	must(t, "InsertMultipleRecordsContext", c.InsertMultipleRecordsContext(ctx, []fluxiondb.InsertMessageRequest{{TS: 5, Doc: "d", Data: "x", Col: "c"}}))
	must(t, "InsertSingleDocumentRecordContext", c.InsertSingleDocumentRecordContext(ctx, fluxiondb.InsertMessageRequest{TS: 6, Doc: "d", Data: "y", Col: "c"}))
	must(t, "SetValueContext", c.SetValueContext(ctx, fluxiondb.SetValueParams{Col: "c", Key: "k", Value: "v"}))
	cols, err := c.FetchCollectionsContext(ctx)
	if err != nil || len(cols) != 1 {
		t.Fatalf("FetchCollectionsContext = %v, %v", cols, err)
	}
	latest, err := c.FetchLatestRecordsContext(ctx, fluxiondb.FetchLatestRecordsParams{Col: "c", TS: 10})
	if err != nil || latest["d"].TS != 6 {
		t.Fatalf("FetchLatestRecordsContext = %v, %v", latest, err)
	}
	recs, err := c.FetchDocumentContext(ctx, fluxiondb.FetchRecordsParams{Col: "c", Doc: "d", To: 10})
	if err != nil || len(recs) != 2 {
		t.Fatalf("FetchDocumentContext = %v, %v", recs, err)
	}
	v, err := c.GetValueContext(ctx, fluxiondb.GetValueParams{Col: "c", Key: "k"})
	if err != nil || v != "v" {
		t.Fatalf("GetValueContext = %q, %v", v, err)
	}
	keys, err := c.GetKeysContext(ctx, fluxiondb.CollectionParam{Col: "c"})
	if err != nil || len(keys) != 1 {
		t.Fatalf("GetKeysContext = %v, %v", keys, err)
	}
	vals, err := c.GetValuesContext(ctx, fluxiondb.GetValuesParams{Col: "c"})
	if err != nil || vals["k"] != "v" {
		t.Fatalf("GetValuesContext = %v, %v", vals, err)
	}
	conns, err := c.GetConnectionsContext(ctx)
	if err != nil || len(conns) != 1 {
		t.Fatalf("GetConnectionsContext = %v, %v", conns, err)
	}
	if _, err := c.AddAPIKeyContext(ctx, "k1", fluxiondb.ApiKeyScopeReadOnly); err != nil {
		t.Fatalf("AddAPIKeyContext: %v", err)
	}
	list, err := c.ListAPIKeysContext(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListAPIKeysContext = %v, %v", list, err)
	}
	if _, err := c.RemoveAPIKeyContext(ctx, "k1"); err != nil {
		t.Fatalf("RemoveAPIKeyContext: %v", err)
	}
	must(t, "DeleteDocumentRecordContext", c.DeleteDocumentRecordContext(ctx, fluxiondb.DeleteRecord{Col: "c", Doc: "d", TS: 5}))
	must(t, "DeleteMultipleRecordsContext", c.DeleteMultipleRecordsContext(ctx, []fluxiondb.DeleteRecord{{Col: "c", Doc: "d", TS: 6}}))
	must(t, "DeleteRecordsRangeContext", c.DeleteRecordsRangeContext(ctx, fluxiondb.DeleteRecordsRange{Col: "c", Doc: "d", FromTS: 1, ToTS: 2}))
	must(t, "DeleteDocumentContext", c.DeleteDocumentContext(ctx, fluxiondb.DeleteDocumentParams{Col: "c", Doc: "d"}))
	must(t, "DeleteValueContext", c.DeleteValueContext(ctx, fluxiondb.DeleteValueParams{Col: "c", Key: "k"}))
	must(t, "DeleteCollectionContext", c.DeleteCollectionContext(ctx, fluxiondb.DeleteCollectionParams{Col: "c"}))
	must(t, "ConnectContext", c.ConnectContext(ctx))

	// A canceled context fails at once.
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.FetchCollectionsContext(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}

	// With the server paused: the caller's deadline, then the client's
	// request timeout.
	srv.Pause()
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	_, err = c.FetchCollectionsContext(short)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fluxiondb.ErrRequestTimeout) {
		t.Fatalf("caller deadline: %v", err)
	}
	start := time.Now()
	_, err = c.FetchCollections()
	if !errors.Is(err, fluxiondb.ErrRequestTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request timeout: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("request timeout after %v, want about 400ms", d)
	}
	srv.Resume()

	// The late answers are discarded; the connection still matches answers
	// to the right requests.
	must(t, "SetValue", c.SetValue(fluxiondb.SetValueParams{Col: "after", Key: "k", Value: "late"}))
	v, err = c.GetValue(fluxiondb.GetValueParams{Col: "after", Key: "k"})
	if err != nil || v != "late" {
		t.Fatalf("GetValue after timeouts = %q, %v", v, err)
	}
}
