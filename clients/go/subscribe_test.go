package fluxiondb_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// events collects a subscription's events.
type events struct {
	mu  sync.Mutex
	got []fluxiondb.Event
}

func (e *events) add(ev fluxiondb.Event) {
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
}

func (e *events) snapshot() []fluxiondb.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fluxiondb.Event(nil), e.got...)
}

func TestSubscribeDeliversEveryPushTypeInOrder(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	reader := masterClient(t, srv)
	writer := masterClient(t, srv)
	var ev events
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "g1", Doc: "/^dev-/"}, ev.add)
	must(t, "Subscribe", err)
	start := sub.Seq()
	must(t, "insert", writer.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{
		{Col: "g1", Doc: "dev-1", TS: 1, Data: "a"}, {Col: "g1", Doc: "probe", TS: 1, Data: "b"},
	}))
	must(t, "DeleteRecordsRange", writer.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "g1", Doc: "dev-1", FromTS: 1, ToTS: 5}))
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "g1", Doc: "dev-2", TS: 2, Data: "c"}))
	must(t, "DeleteDocument", writer.DeleteDocument(fluxiondb.DeleteDocumentParams{Col: "g1", Doc: "dev-2"}))
	eventually(t, 5*time.Second, "four events", func() bool { return len(ev.snapshot()) >= 4 })
	want := []fluxiondb.Event{
		&fluxiondb.RecordEvent{Sub: "s1", Col: "g1", Seq: start + 1, Records: []fluxiondb.PushedRecord{{Doc: "dev-1", TS: 1, Data: "a"}}},
		&fluxiondb.DeleteEvent{Sub: "s1", Col: "g1", Seq: start + 2, Doc: "dev-1", From: ptr(int64(1)), To: ptr(int64(5))},
		&fluxiondb.RecordEvent{Sub: "s1", Col: "g1", Seq: start + 3, Records: []fluxiondb.PushedRecord{{Doc: "dev-2", TS: 2, Data: "c"}}},
		&fluxiondb.DeleteEvent{Sub: "s1", Col: "g1", Seq: start + 4, Doc: "dev-2"},
	}
	if got := ev.snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %#v\nwant %#v", got, want)
	}
	must(t, "Unsubscribe", sub.Unsubscribe())
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "g1", Doc: "dev-3", TS: 3, Data: "d"}))
	// The reader's own request is answered after anything pushed before it.
	if _, err := reader.FetchCollections(); err != nil {
		t.Fatal(err)
	}
	<-sub.Done()
	if n := len(ev.snapshot()); n != 4 || sub.Active() {
		t.Fatalf("after Unsubscribe: %d events, active %v", n, sub.Active())
	}
}

func TestSubscribeChanEndsWithContextAndReportsResumeLost(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	since := int64(0)
	must(t, "insert", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "g2", Doc: "d", TS: 7, Data: "stored"}))
	sub, ch, err := c.SubscribeChan(ctx, fluxiondb.SubscribeParams{Col: "g2", Since: &since})
	must(t, "SubscribeChan", err)
	first := <-ch
	if rec, ok := first.(*fluxiondb.RecordEvent); !ok || rec.Seq != sub.Seq() || rec.Records[0].Data != "stored" {
		t.Fatalf("backlog event = %#v", first)
	}
	cancel()
	for range ch {
		// Drained and closed once the context ended the subscription.
	}
	if sub.Active() {
		t.Fatal("still active after its context ended")
	}
	after := int64(1)
	lost, ch2, err := c.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "g2", AfterSeq: &after})
	must(t, "SubscribeChan", err)
	end := <-ch2
	want := &fluxiondb.EndEvent{Sub: lost.ID(), Error: fluxiondb.ResumePointLost, ResumeLost: true}
	if !reflect.DeepEqual(end, want) {
		t.Fatalf("got %#v, want %#v", end, want)
	}
	if _, open := <-ch2; open {
		t.Fatal("channel not closed after the end event")
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestSubscriptionResumesAfterReconnectWithoutGap(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	proxy := startGateProxy(t, srv.Port)
	url, cut := proxy.url(), proxy.cut
	reader := fluxiondb.NewClientWithOptions(url, testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	writer := masterClient(t, srv)
	var mu sync.Mutex
	var seen []int64
	var reconnects []fluxiondb.Event
	_, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "g3"}, func(ev fluxiondb.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *fluxiondb.RecordEvent:
			for _, r := range e.Records {
				seen = append(seen, r.TS)
			}
		default:
			reconnects = append(reconnects, ev)
		}
	})
	must(t, "Subscribe", err)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	ts := int64(0)
	write := func(n int) {
		for i := 0; i < n; i++ {
			ts++
			must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "g3", Doc: "d", TS: ts, Data: "v"}))
		}
	}
	write(20)
	eventually(t, 5*time.Second, "the first pushes", func() bool { return count() >= 20 })
	cut()
	write(30) // while the reader is away
	eventually(t, 10*time.Second, "the reconnect event", func() bool { mu.Lock(); defer mu.Unlock(); return len(reconnects) > 0 })
	write(10)
	eventually(t, 10*time.Second, "every write", func() bool { return count() >= 60 })
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v != int64(i+1) {
			t.Fatalf("records out of order or missing: %v", seen)
		}
	}
	if len(seen) != 60 {
		t.Fatalf("got %d records, want 60", len(seen))
	}
	if _, ok := reconnects[0].(*fluxiondb.ReconnectEvent); !ok {
		t.Fatalf("first non-record event = %#v", reconnects[0])
	}
}
