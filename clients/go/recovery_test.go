package fluxiondb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// drain waits for a subscription's events channel to close and returns what came
// through it.
func drain(t *testing.T, ch <-chan fluxiondb.Event, what string) []fluxiondb.Event {
	t.Helper()
	var got []fluxiondb.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("%s: channel still open after 10s; events %#v", what, got)
		}
	}
}

// pushesStop writes to col until a write is no longer pushed to the reader's
// connection (at most 20 writes), then checks that one more is not either:
// the server's subscriptions on col for that connection have ended.
func pushesStop(t *testing.T, p *gateProxy, reader, writer *fluxiondb.Client, col string) {
	t.Helper()
	// Answered after the requests the reader sent before it (the sub held
	// by the proxy): from here on, the subscription exists or has ended.
	_, err := reader.FetchCollections()
	must(t, "FetchCollections", err)
	ts := int64(0)
	write := func() int {
		before := p.pushes(col)
		ts++
		must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: col, Doc: "d", TS: ts, Data: "x"}))
		// Answered after anything pushed to the reader before it.
		_, err := reader.FetchCollections()
		must(t, "FetchCollections", err)
		return p.pushes(col) - before
	}
	for write() > 0 {
		if ts >= 20 {
			t.Fatalf("writes to %s are still pushed to the reader after %d writes", col, ts)
		}
	}
	if n := write(); n != 0 {
		t.Fatalf("a later write to %s was pushed %d times", col, n)
	}
}

func TestSinceBacklogCutShortEndsTheSubscription(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	for i := 0; i < 3000; i += 1000 {
		batch := make([]fluxiondb.InsertMessageRequest, 1000)
		for j := range batch {
			batch[j] = fluxiondb.InsertMessageRequest{Col: "r1", Doc: fmt.Sprintf("d%d", (i+j)%3), TS: int64(i + j + 1), Data: strings.Repeat("x", 100)}
		}
		must(t, "insert", writer.InsertMultipleRecords(batch))
	}
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	since := int64(0)
	var once sync.Once
	var ev events
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r1", Since: &since}, func(e fluxiondb.Event) {
		ev.add(e)
		if _, ok := e.(*fluxiondb.RecordEvent); ok {
			once.Do(p.cut) // after the first backlog push
		}
	})
	must(t, "Subscribe", err)
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription still running; events %#v", ev.snapshot())
	}
	got := ev.snapshot()
	want := &fluxiondb.EndEvent{Sub: sub.ID(), Error: fluxiondb.BacklogInterrupted, ResumeLost: true}
	if last := got[len(got)-1]; !reflect.DeepEqual(last, want) {
		t.Fatalf("last event %#v, want %#v", last, want)
	}
	for _, e := range got {
		if _, ok := e.(*fluxiondb.ReconnectEvent); ok {
			t.Fatalf("resumed after the backlog's seq: %#v", got)
		}
	}
}

func TestSinceSubscriptionResumesOnceALaterWriteArrived(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "r2", Doc: "d", TS: 1, Data: "stored"}))
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	since := int64(0)
	_, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r2", Since: &since})
	must(t, "SubscribeChan", err)
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "r2", Doc: "d", TS: 2, Data: "live"}))
	var got []string
	next := func() {
		select {
		case e := <-ch:
			switch e := e.(type) {
			case *fluxiondb.RecordEvent:
				got = append(got, e.Records[0].Data)
			default:
				got = append(got, fmt.Sprintf("%T", e))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event after %v", got)
		}
	}
	next()
	next()
	p.cut()
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "r2", Doc: "d", TS: 3, Data: "while away"}))
	next()
	next()
	if want := []string{"stored", "live", "*fluxiondb.ReconnectEvent", "while away"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestSubscriptionsEndWhenReconnectingGivesUp(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	opts := quickOptions("reader")
	opts.ReconnectAttempts, opts.ReconnectMinDelay, opts.ReconnectMaxDelay = 2, 10*time.Millisecond, 10*time.Millisecond
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, opts)
	t.Cleanup(reader.Close)
	subA, chA, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r3.a"})
	must(t, "SubscribeChan", err)
	subB, chB, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r3.b"})
	must(t, "SubscribeChan", err)
	p.close() // the server cannot be reached any more
	for _, c := range []struct {
		sub *fluxiondb.Subscription
		ch  <-chan fluxiondb.Event
	}{{subA, chA}, {subB, chB}} {
		got := drain(t, c.ch, "after the attempts ran out")
		want := []fluxiondb.Event{&fluxiondb.EndEvent{Sub: c.sub.ID(), Error: fluxiondb.ReconnectExhausted, ResumeLost: true}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events %#v, want %#v", got, want)
		}
		if c.sub.Active() {
			t.Fatal("still active")
		}
	}
}

func TestResumeThatTimesOutEndsTheSubscriptionAndItsLateID(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	opts := quickOptions("reader")
	opts.RequestTimeout = 300 * time.Millisecond
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, opts)
	t.Cleanup(reader.Close)
	writer := masterClient(t, srv)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r4"})
	must(t, "SubscribeChan", err)
	p.hold()
	p.cut()
	got := drain(t, ch, "after the resume timed out")
	want := []fluxiondb.Event{&fluxiondb.EndEvent{Sub: sub.ID(), Error: "resubscribing failed: fluxiondb: request timeout"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %#v, want %#v", got, want)
	}
	// The server answers the held resume late: the client ends what it started.
	p.release()
	pushesStop(t, p, reader, writer, "r4")
}

func TestUnsubscribeWhileTheResumeIsOnItsWay(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	writer := masterClient(t, srv)
	var ev events
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r5"}, ev.add)
	must(t, "Subscribe", err)
	p.hold()
	p.cut()
	p.waitHeld("the resume request")
	must(t, "Unsubscribe", sub.Unsubscribe())
	p.release()
	pushesStop(t, p, reader, writer, "r5")
	<-sub.Done()
	if got := ev.snapshot(); len(got) != 0 {
		t.Fatalf("events after Unsubscribe: %#v", got)
	}
}

func TestSubscribeAnsweredAfterItsContextEndedIsUnsubscribed(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	must(t, "Connect", reader.Connect())
	writer := masterClient(t, srv)
	p.hold()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := reader.Subscribe(ctx, fluxiondb.SubscribeParams{Col: "r6"}, func(fluxiondb.Event) { t.Error("event after the caller gave up") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe = %v, want the context's deadline", err)
	}
	p.release()
	pushesStop(t, p, reader, writer, "r6")
}
