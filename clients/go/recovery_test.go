package fluxiondb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
	var ev events
	p.cutAfterRecs(1) // the answer (backlog: 3) and the first backlog push get through
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r1", Since: &since}, ev.add)
	must(t, "Subscribe", err)
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription still running; events %#v", ev.snapshot())
	}
	got := ev.snapshot()
	want := &fluxiondb.EndEvent{Sub: sub.ID(), Error: fluxiondb.BacklogInterrupted, ResumeLost: true}
	if len(got) != 2 || !reflect.DeepEqual(got[1], want) {
		t.Fatalf("events %#v, want one backlog push then %#v", got, want)
	}
	if _, ok := got[0].(*fluxiondb.RecordEvent); !ok {
		t.Fatalf("first event %#v, want a backlog push", got[0])
	}
}

// storeRecords writes n records of document d to col: ceil(n/1000) backlog
// pushes for a subscription with Since 0.
func storeRecords(t *testing.T, writer *fluxiondb.Client, col string, n int) {
	t.Helper()
	batch := make([]fluxiondb.InsertMessageRequest, n)
	for i := range batch {
		batch[i] = fluxiondb.InsertMessageRequest{Col: col, Doc: "d", TS: int64(i + 1), Data: "stored"}
	}
	must(t, "insert", writer.InsertMultipleRecords(batch))
}

// describeEvents waits for n events on ch and describes them: "rec <first
// record's data> x<records>" or the event's type.
func describeEvents(t *testing.T, ch <-chan fluxiondb.Event, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case e := <-ch:
			switch e := e.(type) {
			case *fluxiondb.RecordEvent:
				got = append(got, fmt.Sprintf("rec %s x%d", e.Records[0].Data, len(e.Records)))
			default:
				got = append(got, fmt.Sprintf("%T", e))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event after %v", got)
		}
	}
	return got
}

// cutAndWrite cuts the reader's connection and writes once more to col.
func cutAndWrite(t *testing.T, p *gateProxy, writer *fluxiondb.Client, col string) {
	t.Helper()
	p.cut()
	must(t, "insert", writer.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: col, Doc: "d", TS: 1_000_000, Data: "while away"}))
}

func TestSinceBacklogCompleteByItsCountResumesOnAQuietCollection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	storeRecords(t, writer, "r7", 1500) // two backlog pushes, and no later write before the drop
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r7", Since: ptr(int64(0))})
	must(t, "SubscribeChan", err)
	answerSeq := sub.Seq()
	got := describeEvents(t, ch, 2)
	cutAndWrite(t, p, writer, "r7")
	got = append(got, describeEvents(t, ch, 2)...)
	if want := []string{"rec stored x1000", "rec stored x500", "*fluxiondb.ReconnectEvent", "rec while away x1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !sub.Active() || sub.Seq() <= answerSeq {
		t.Fatalf("active %v, seq %d after the answer's %d", sub.Active(), sub.Seq(), answerSeq)
	}
}

func TestSinceSubscriptionWithAnEmptyBacklogResumes(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	storeRecords(t, writer, "r8", 1) // at ts 1: nothing above Since 5
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r8", Since: ptr(int64(5))})
	must(t, "SubscribeChan", err)
	cutAndWrite(t, p, writer, "r8")
	if got, want := describeEvents(t, ch, 2), []string{"*fluxiondb.ReconnectEvent", "rec while away x1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !sub.Active() {
		t.Fatal("ended")
	}
}

func TestSinceBacklogBeforeItsAnswerIsDeliveredAndCounted(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	storeRecords(t, writer, "r9", 1500)
	p.answersAfterBacklog()
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	var ev events
	sub, err := reader.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r9", Since: ptr(int64(0))}, ev.add)
	must(t, "Subscribe", err)
	eventually(t, 5*time.Second, "the two backlog pushes", func() bool { return len(ev.snapshot()) >= 2 })
	cutAndWrite(t, p, writer, "r9")
	eventually(t, 5*time.Second, "the resumption and the missed write", func() bool { return len(ev.snapshot()) >= 4 })
	got := ev.snapshot()
	var kinds []string
	for _, e := range got {
		switch e := e.(type) {
		case *fluxiondb.RecordEvent:
			kinds = append(kinds, fmt.Sprintf("rec seq+%d x%d", e.Seq-got[0].(*fluxiondb.RecordEvent).Seq, len(e.Records)))
		default:
			kinds = append(kinds, fmt.Sprintf("%T", e))
		}
	}
	if want := []string{"rec seq+0 x1000", "rec seq+0 x500", "*fluxiondb.ReconnectEvent", "rec seq+1 x1"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if !sub.Active() {
		t.Fatal("ended")
	}
}

func TestSinceWithoutABacklogCountInTheAnswerKeepsTheLaterWriteRule(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	p := startGateProxy(t, srv.Port)
	writer := masterClient(t, srv)
	storeRecords(t, writer, "r10", 1)
	p.stripBacklog() // as an older server answers
	reader := fluxiondb.NewClientWithOptions(p.url(), testserver.MasterKey, quickOptions("reader"))
	t.Cleanup(reader.Close)
	sub, ch, err := reader.SubscribeChan(context.Background(), fluxiondb.SubscribeParams{Col: "r10", Since: ptr(int64(0))})
	must(t, "SubscribeChan", err)
	if got := describeEvents(t, ch, 1); got[0] != "rec stored x1" {
		t.Fatalf("events %v, want the backlog push", got)
	}
	p.cut()
	got := drain(t, ch, "after the drop")
	want := []fluxiondb.Event{&fluxiondb.EndEvent{Sub: sub.ID(), Error: fluxiondb.BacklogInterrupted, ResumeLost: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %#v, want %#v", got, want)
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
