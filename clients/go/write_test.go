package fluxiondb_test

import (
	"context"
	"errors"
	"fmt"
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
	// The context ends once the frame is being written (the proxy holds a
	// part of it), not after a fixed time: encoding 8 MiB under -race on a
	// loaded machine can take longer than any fixed deadline, and a request
	// whose context ends before its frame starts is rightly never sent.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	big := strings.Repeat("x", 8<<20)
	inserted := make(chan error, 1)
	go func() {
		inserted <- c.InsertSingleDocumentRecordContext(ctx, fluxiondb.InsertMessageRequest{Col: "r7.big", Doc: "d", TS: 1, Data: big})
	}()
	p.waitHeld("a part of the large frame at the proxy")
	cancel(context.DeadlineExceeded)
	select {
	case err = <-inserted:
	case <-time.After(10 * time.Second):
		t.Fatal("the insert did not return 10s after its context ended")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("insert = %v, want the context's deadline", err)
	}
	p.release()
	// The frame was written in full after its caller left, on the same connection.
	// Generous: the 8 MiB frame goes through the test proxy, slow under -race on a loaded machine.
	start := time.Now()
	var tries []string
	eventually(t, 30*time.Second, "the large record", func() bool {
		recs, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "r7.big", Doc: "d", From: 0, To: 10})
		size := -1
		if len(recs) == 1 {
			size = len(recs[0].Data)
		}
		tries = append(tries, fmt.Sprintf("%v: %d records, data %d bytes, err %v", time.Since(start).Round(time.Millisecond), len(recs), size, err))
		if len(tries) > 8 {
			tries = tries[len(tries)-8:]
		}
		return err == nil && size == len(big)
	}, func() string { return "last fetches:\n" + strings.Join(tries, "\n") })
	must(t, "insert", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "r7.live", Doc: "d", TS: 1, Data: "x"}))
	eventually(t, 5*time.Second, "the push", func() bool { return len(ev.snapshot()) > 0 })
	if got := ev.snapshot(); len(got) != 1 {
		t.Fatalf("subscription events %#v, want the one record", got)
	}
	if strings.Contains(logs.String(), "connection lost") {
		t.Fatalf("the connection was lost:\n%s", logs.String())
	}
}

func TestARequestAfterTheCloseFrameGoesOutOnTheNextConnection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	c := connectedClientURL(t, p.url(), quickOptions("closing"))
	must(t, "SetValue", c.SetValue(fluxiondb.SetValueParams{Col: "r8", Key: "k", Value: "v"}))
	// The link is frozen, so the server's answer to the close frame never comes and the
	// connection stays closing: its reader has not ended the session yet.
	p.freeze()
	must(t, "close frame", fluxiondb.SendCloseFrame(c))
	got, err := c.GetValue(fluxiondb.GetValueParams{Col: "r8", Key: "k"})
	if err != nil || got != "v" {
		t.Fatalf("GetValue = %q, %v; want the value, on a new connection", got, err)
	}
	if n := p.connections(); n != 2 {
		t.Fatalf("the proxy saw %d connections, want 2", n)
	}
}
