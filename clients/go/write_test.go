package fluxiondb_test

import (
	"context"
	"errors"
	"log"
	"strings"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

func TestContextDeadlineMidWriteKeepsTheSharedConnection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	var logs lockedBuffer
	opts := quickOptions("shared")
	opts.Logger = log.New(&logs, "", 0)
	c := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, opts)
	t.Cleanup(c.Close)
	var ev events
	_, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r7.live"}, ev.add)
	must(t, "Subscribe", err)
	p.hold() // the proxy stops reading: a large frame cannot be written in full
	// Long enough to encode the frame and start writing it; the proxy holds it past then.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	big := strings.Repeat("x", 8<<20)
	err = c.InsertSingleDocumentRecordContext(ctx, fluxiondb.InsertMessageRequest{Col: "r7.big", Doc: "d", TS: 1, Data: big})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("insert = %v, want the context's deadline", err)
	}
	p.release()
	// The frame was written in full after its caller left, on the same connection.
	// Generous: the 8 MiB frame goes through the test proxy, slow under -race on a loaded machine.
	eventually(t, 30*time.Second, "the large record", func() bool {
		recs, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "r7.big", Doc: "d", From: 0, To: 10})
		return err == nil && len(recs) == 1 && len(recs[0].Data) == len(big)
	})
	must(t, "insert", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "r7.live", Doc: "d", TS: 1, Data: "x"}))
	eventually(t, 5*time.Second, "the push", func() bool { return len(ev.snapshot()) > 0 })
	if got := ev.snapshot(); len(got) != 1 {
		t.Fatalf("subscription events %#v, want the one record", got)
	}
	if strings.Contains(logs.String(), "connection lost") {
		t.Fatalf("the connection was lost:\n%s", logs.String())
	}
}
