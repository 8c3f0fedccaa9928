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
