package fluxiondb_test

import (
	"context"
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
