package fluxiondb_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// 32 goroutines share one client; every answer must reach its own caller.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := fluxiondb.NewClientWithOptions(srv.URL(), testserver.MasterKey, quickOptions("shared")) // connects lazily, concurrently
	t.Cleanup(c.Close)

	const workers, rounds = 32, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs <- worker(c, w, rounds)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	latest, err := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "load", TS: 1 << 40})
	must(t, "FetchLatestRecords", err)
	if len(latest) != workers {
		t.Fatalf("got %d documents, want %d", len(latest), workers)
	}
	for w := 0; w < workers; w++ {
		if r := latest[fmt.Sprintf("doc-%d", w)]; r.TS != rounds || r.Data != fmt.Sprintf("w%d r%d", w, rounds) {
			t.Fatalf("doc-%d latest = %+v", w, r)
		}
	}
	conns, err := c.GetConnections()
	must(t, "GetConnections", err)
	if len(conns) != 1 {
		t.Fatalf("the client opened %d connections, want 1", len(conns))
	}
}

// worker writes and reads back its own document and key, checking that
// every answer is the one it asked for.
func worker(c *fluxiondb.Client, w, rounds int) error {
	doc, key := fmt.Sprintf("doc-%d", w), fmt.Sprintf("key-%d", w)
	for r := 1; r <= rounds; r++ {
		data := fmt.Sprintf("w%d r%d", w, r)
		if err := c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: int64(r), Doc: doc, Data: data, Col: "load"}); err != nil {
			return fmt.Errorf("worker %d insert: %w", w, err)
		}
		if err := c.SetValue(fluxiondb.SetValueParams{Col: "kv", Key: key, Value: data}); err != nil {
			return fmt.Errorf("worker %d SetValue: %w", w, err)
		}
		v, err := c.GetValue(fluxiondb.GetValueParams{Col: "kv", Key: key})
		if err != nil || v != data {
			return fmt.Errorf("worker %d GetValue = %q, %v; want %q", w, v, err, data)
		}
		recs, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "load", Doc: doc, From: 0, To: int64(r)})
		if err != nil || len(recs) != r || recs[r-1].Data != data {
			return fmt.Errorf("worker %d FetchDocument = %v, %v", w, recs, err)
		}
		latest, err := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "load", TS: int64(r), Doc: doc})
		if err != nil || len(latest) != 1 || latest[doc].Data != data {
			return fmt.Errorf("worker %d FetchLatestRecords = %v, %v", w, latest, err)
		}
	}
	return nil
}

// Goroutines keep calling while the server is killed and restarted: no call
// hangs, failures are transport errors only, and everything works again
// once the client has reconnected.
func TestConcurrentUseAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := connectedClient(t, srv, testserver.MasterKey, quickOptions("restart"))

	const workers = 16
	var successes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	failures := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 1; i <= 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: int64(i), Doc: fmt.Sprintf("w%d", w), Data: "x", Col: "c"})
				var se *fluxiondb.ServerError
				if errors.As(err, &se) || errors.Is(err, fluxiondb.ErrClosed) || errors.Is(err, fluxiondb.ErrRequestTimeout) {
					failures <- fmt.Errorf("worker %d: unexpected error %v", w, err)
					return
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the server is down; do not spin
				} else {
					successes.Add(1)
				}
			}
		}(w)
	}

	eventually(t, 5*time.Second, "the workers to run against the live server", func() bool {
		return successes.Load() >= 4*workers
	})
	srv.Kill()
	srv.Restart()
	eventually(t, 10*time.Second, "the reconnect", func() bool { return fluxiondb.IsConnected(c) })
	close(stop)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	for w := 0; w < workers; w++ {
		must(t, "insert after restart", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: 1, Doc: fmt.Sprintf("w%d", w), Data: "y", Col: "c"}))
	}
}
