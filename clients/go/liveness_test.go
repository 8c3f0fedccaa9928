package fluxiondb_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// The liveness watchdog against the real server, through a proxy that can
// freeze a link (stop forwarding both ways without closing anything, as a NAT
// that dropped the flow does): a frozen link is given up and replaced, and a
// healthy idle one is kept.

func TestKeepAliveGivesUpAFrozenLink(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	opts := quickOptions("reader")
	opts.KeepAliveInterval = 200 * time.Millisecond
	opts.KeepAliveTimeout = time.Second
	reader := connectedClientURL(t, p.url(), opts)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "l1"})
	must(t, "SubscribeChan", err)
	write := func(ts int64, data string) {
		t.Helper()
		must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "l1", Doc: "d", TS: ts, Data: data}))
	}
	write(1, "before")
	got := describeEvents(t, ch, 1)

	p.freeze()
	// Neither end is told: without a watchdog this request (until its
	// timeout) and the subscription (for ever) would wait.
	inFlight := make(chan error, 1)
	go func() {
		_, err := reader.FetchCollections()
		inFlight <- err
	}()
	write(2, "while frozen")
	select {
	case err := <-inFlight:
		if !errors.Is(err, fluxiondb.ErrConnectionLost) || !errors.Is(err, fluxiondb.ErrKeepAliveTimeout) {
			t.Fatalf("request in flight on the frozen link: got %v, want the connection lost by the keep-alive", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request in flight on the frozen link is still waiting after 5s")
	}

	// A fresh link through the proxy: the subscription resumes without a gap.
	got = append(got, describeEvents(t, ch, 2)...)
	write(3, "after")
	got = append(got, describeEvents(t, ch, 1)...)
	want := []string{"rec before x1", "*fluxiondb.ReconnectEvent", "rec while frozen x1", "rec after x1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !sub.Active() {
		t.Fatal("the subscription ended")
	}
}

func TestKeepAliveKeepsAHealthyIdleConnection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	opts := quickOptions("reader")
	opts.KeepAliveInterval = 150 * time.Millisecond
	opts.KeepAliveTimeout = 3 * time.Second // generous: a loaded machine must not look like a dead link
	reader := connectedClientURL(t, p.url(), opts)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "l2"})
	must(t, "SubscribeChan", err)
	// Idle apart from the watchdog's pings: wait through several of them.
	eventually(t, 10*time.Second, "five pongs to the client's pings", func() bool { return p.pongCount() >= 5 })
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "l2", Doc: "d", TS: 1, Data: "still here"}))
	if got, want := describeEvents(t, ch, 1), []string{"rec still here x1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v (no reconnection)", got, want)
	}
	if !sub.Active() {
		t.Fatal("the subscription ended")
	}
	if n := p.connections(); n != 1 {
		t.Fatalf("the proxy saw %d connections, want 1 (no reconnection)", n)
	}
}

// connectedClientURL returns a client of url connected with the master key,
// closed at the end of the test.
func connectedClientURL(t *testing.T, url string, opts fluxiondb.Options) *fluxiondb.Client {
	t.Helper()
	c := fluxiondb.NewClientWithOptions(url, testserver.MasterKey, opts)
	t.Cleanup(c.Close)
	must(t, "Connect", c.Connect())
	return c
}
