package fluxiondb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// Events already queued when Unsubscribe returns are never handed to the
// handler, even when its goroutine had taken several of them at once.
func TestNoEventReachesTheHandlerAfterUnsubscribeReturns(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	reader := masterClient(t, srv)
	writer := masterClient(t, srv)
	entered := make(chan fluxiondb.Event, 100)
	proceed := make(chan struct{})
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u1"}, func(ev fluxiondb.Event) {
		entered <- ev
		<-proceed
	})
	must(t, "Subscribe", err)
	start := sub.Seq()
	for ts := int64(1); ts <= 5; ts++ {
		must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "u1", Doc: "d", TS: ts, Data: "v"}))
	}
	first := receive(t, entered, "the first event")
	// Every write is queued behind the first event's handler.
	eventually(t, 5*time.Second, "every push queued", func() bool { return sub.Seq() == start+5 })
	proceed <- struct{}{}
	second := receive(t, entered, "the second event")
	must(t, "Unsubscribe", sub.Unsubscribe())
	close(proceed) // the handler no longer blocks
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Unsubscribe")
	}
	close(entered)
	var late []int64
	for ev := range entered {
		late = append(late, ev.(*fluxiondb.RecordEvent).Seq)
	}
	if first.(*fluxiondb.RecordEvent).Seq != start+1 || second.(*fluxiondb.RecordEvent).Seq != start+2 || len(late) != 0 {
		t.Fatalf("handled seqs %d, %d, then after Unsubscribe returned: %v (want none)",
			first.(*fluxiondb.RecordEvent).Seq, second.(*fluxiondb.RecordEvent).Seq, late)
	}
}

// receive waits (at most 5 s) for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// When the client ends a subscription whose handler fell behind
// ("subscriber too slow"), Seq names the last write handed to the handler,
// so that resuming with AfterSeq: Seq() loses nothing.
func TestSubscriberTooSlowLeavesSeqAtTheLastQueuedWrite(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	reader := masterClient(t, srv)
	writer := masterClient(t, srv)
	const limit = 20
	fluxiondb.SetMaxQueued(reader, limit)
	release := make(chan struct{})
	var handled []fluxiondb.Event // read once Done is closed
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u2"}, func(ev fluxiondb.Event) {
		<-release
		handled = append(handled, ev)
	})
	must(t, "Subscribe", err)
	// One event in the handler, limit queued, the next one past the limit.
	for ts := int64(1); ts <= limit+5; ts++ {
		must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "u2", Doc: "d", TS: ts, Data: "v"}))
	}
	eventually(t, 5*time.Second, "the too-slow end", func() bool { return !sub.Active() })
	close(release)
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	end, ok := handled[len(handled)-1].(*fluxiondb.EndEvent)
	if !ok || end.Error != "subscriber too slow" || end.ResumeLost {
		t.Fatalf("last event = %#v", handled[len(handled)-1])
	}
	last := handled[len(handled)-2].(*fluxiondb.RecordEvent)
	if got := sub.Seq(); got != last.Seq {
		t.Fatalf("Seq() = %d, the last write handed to the handler is %d", got, last.Seq)
	}
	// Resuming after Seq() delivers the first write the handler did not get.
	after := sub.Seq()
	_, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "u2", AfterSeq: &after})
	must(t, "SubscribeChan", err)
	next, ok := receive(t, ch, "the first replayed write").(*fluxiondb.RecordEvent)
	if !ok || next.Records[0].TS != last.Records[0].TS+1 {
		t.Fatalf("first replayed event %#v, the last handled record has ts %d", next, last.Records[0].TS)
	}
}

// A SubscribeChan consumer that is not reading when the server ends the
// subscription: Unsubscribe, and Close, still end its goroutines, close
// Done and close the channel.
func TestSubscribeChanEndedByTheServerIsFreedByUnsubscribeAndClose(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	master := masterClient(t, srv)
	c := scopedClient(t, srv, master, "chan-key", fluxiondb.ApiKeyScopeReadOnly)
	subA, chA, err := c.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "u3a"})
	must(t, "SubscribeChan", err)
	subB, chB, err := c.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "u3b"})
	must(t, "SubscribeChan", err)
	startA, startB := subA.Seq(), subB.Seq()
	// More than the channels hold (64): the handlers block on a full channel.
	const n = 70
	for ts := int64(1); ts <= n; ts++ {
		for _, col := range []string{"u3a", "u3b"} {
			must(t, "insert", master.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: col, Doc: "d", TS: ts, Data: "v"}))
		}
	}
	eventually(t, 5*time.Second, "every push queued", func() bool {
		return subA.Seq() == startA+n && subB.Seq() == startB+n && len(chA) == cap(chA) && len(chB) == cap(chB)
	})
	_, err = master.RemoveAPIKey("chan-key") // the server ends both subscriptions
	must(t, "RemoveAPIKey", err)
	eventually(t, 5*time.Second, "both ended", func() bool { return !subA.Active() && !subB.Active() })

	must(t, "Unsubscribe", subA.Unsubscribe())
	waitClosed(t, subA.Done(), "A's Done after Unsubscribe")
	drainClosed(t, chA, "A's channel")
	c.Close()
	waitClosed(t, subB.Done(), "B's Done after Close")
	drainClosed(t, chB, "B's channel")
}

// waitClosed waits (at most 5 s) for done to be closed.
func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not closed after 5 s", what)
	}
}

// drainClosed reads ch until it is closed (at most 5 s).
func drainClosed(t *testing.T, ch <-chan fluxiondb.Event, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatalf("%s: not closed after 5 s", what)
		}
	}
}

// An Unsubscribe whose connection drops before the server answered succeeds:
// the server's subscription died with the connection, and the client does
// not resume it.
func TestUnsubscribeSucceedsWhenTheConnectionDropsMidRequest(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	proxy := startGateProxy(t, srv.Port)
	c := fluxiondb.NewClientWithOptions(proxy.url(), testserver.MasterKey, quickOptions("unsub-drop"))
	t.Cleanup(c.Close)
	writer := masterClient(t, srv)
	var ev events
	sub, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u4"}, ev.add)
	must(t, "Subscribe", err)
	proxy.hold()
	done := make(chan error, 1)
	go func() { done <- sub.Unsubscribe() }()
	proxy.waitHeld("the unsub request")
	proxy.cut()
	proxy.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Unsubscribe = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Unsubscribe did not return")
	}
	if sub.Active() {
		t.Fatal("still active")
	}
	waitClosed(t, sub.Done(), "Done")
	// Not resumed on the next connection.
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "u4", Doc: "d", TS: 1, Data: "v"}))
	if _, err := c.FetchCollections(); err != nil { // reconnects; answered after any push
		t.Fatal(err)
	}
	if got := ev.snapshot(); len(got) != 0 {
		t.Fatalf("events after Unsubscribe: %#v", got)
	}
}

// A connection that drops, and is replaced, between a Subscribe's answer and
// the moment the client files the subscription: the subscription is resumed
// on the new connection all the same.
func TestSubscriptionWhoseConnectionDropsBeforeItIsFiledIsResumed(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	proxy := startGateProxy(t, srv.Port)
	c := fluxiondb.NewClientWithOptions(proxy.url(), testserver.MasterKey, quickOptions("late-file"))
	t.Cleanup(c.Close)
	must(t, "Connect", c.Connect())
	writer := masterClient(t, srv)
	fluxiondb.SetBeforeRegister(c, func() {
		proxy.cut()
		eventually(t, 10*time.Second, "the new connection", func() bool {
			return proxy.connections() >= 2 && fluxiondb.IsConnected(c)
		})
	})
	var ev events
	sub, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u6"}, ev.add)
	must(t, "Subscribe", err)
	fluxiondb.SetBeforeRegister(c, nil)
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "u6", Doc: "d", TS: 1, Data: "v"}))
	eventually(t, 10*time.Second, "the write after the drop", func() bool {
		for _, e := range ev.snapshot() {
			if _, ok := e.(*fluxiondb.RecordEvent); ok {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("events: %#v; active %v", ev.snapshot(), sub.Active()) })
	if _, ok := ev.snapshot()[0].(*fluxiondb.ReconnectEvent); !ok {
		t.Fatalf("first event %#v, want a ReconnectEvent", ev.snapshot()[0])
	}
}

// A client closed between a Subscribe's answer and the moment the client
// files the subscription: the subscription ends, without events, as Close
// ends every other.
func TestSubscriptionFiledAfterCloseEnds(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)
	fluxiondb.SetBeforeRegister(c, c.Close)
	var ev events
	sub, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u7"}, ev.add)
	must(t, "Subscribe", err)
	waitClosed(t, sub.Done(), "Done")
	if sub.Active() || len(ev.snapshot()) != 0 {
		t.Fatalf("active %v, events %#v", sub.Active(), ev.snapshot())
	}
}

// Without background reconnection, a subscription whose connection dropped
// before the client filed it ends with an EndEvent, as the others on that
// connection do.
func TestSubscriptionFiledAfterItsConnectionDroppedEndsWithoutReconnection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	proxy := startGateProxy(t, srv.Port)
	opts := quickOptions("no-reconnect")
	opts.ReconnectAttempts = -1
	c := fluxiondb.NewClientWithOptions(proxy.url(), testserver.MasterKey, opts)
	t.Cleanup(c.Close)
	must(t, "Connect", c.Connect())
	fluxiondb.SetBeforeRegister(c, func() {
		proxy.cut()
		eventually(t, 5*time.Second, "the drop noticed", func() bool { return !fluxiondb.IsConnected(c) })
	})
	var ev events
	sub, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "u8"}, ev.add)
	must(t, "Subscribe", err)
	waitClosed(t, sub.Done(), "Done")
	got := ev.snapshot()
	if len(got) != 1 {
		t.Fatalf("events %#v, want one EndEvent", got)
	}
	if end, ok := got[0].(*fluxiondb.EndEvent); !ok || !end.ResumeLost || !strings.HasPrefix(end.Error, "connection lost: ") {
		t.Fatalf("event %#v, want an EndEvent \"connection lost: …\" with ResumeLost", got[0])
	}
}
