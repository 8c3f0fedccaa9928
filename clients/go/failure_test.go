package fluxiondb_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// A refused key fails at once with the server's close reason, and is not
// retried.
func TestRefusedKey(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)

	for _, tc := range []struct{ key, reason string }{
		{"nope", "Unknown API key"},
		{"", "Missing API key parameter"},
	} {
		c := fluxiondb.NewClientWithOptions(srv.URL(), tc.key, quickOptions(""))
		t.Cleanup(c.Close)
		start := time.Now()
		err := c.Connect()
		var authErr *fluxiondb.AuthError
		if !errors.As(err, &authErr) || authErr.Code != 1008 || authErr.Reason != tc.reason {
			t.Fatalf("key %q: Connect = %v, want AuthError 1008 %q", tc.key, err, tc.reason)
		}
		if want := "authentication failed: " + tc.reason; !contains(err, want) {
			t.Fatalf("error text %q lacks %q", err, want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("refusal took %v", d)
		}
		// Method calls fail the same way.
		_, err = c.FetchCollections()
		if !errors.As(err, &authErr) || authErr.Reason != tc.reason {
			t.Fatalf("key %q: FetchCollections = %v", tc.key, err)
		}
		if fluxiondb.IsConnected(c) {
			t.Fatal("refused client reports a connection")
		}
	}
}

// Requests in flight when the server dies return at once with
// ErrConnectionLost; the client reconnects in the background once the
// server is back on the same port.
func TestServerKilledMidRequestAndReconnect(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := connectedClient(t, srv, testserver.MasterKey, quickOptions("survivor"))
	must(t, "insert", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: 1, Doc: "d", Data: "x", Col: "c"}))

	// Pause the server so the requests stay unanswered, then kill it.
	srv.Pause()
	const inFlight = 8
	errs := make(chan error, inFlight)
	for i := 0; i < inFlight; i++ {
		go func() {
			_, err := c.FetchCollections()
			errs <- err
		}()
	}
	eventually(t, 5*time.Second, "the requests to be in flight", func() bool {
		return fluxiondb.PendingRequests(c) == inFlight
	})
	killed := time.Now()
	srv.Kill()
	for i := 0; i < inFlight; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, fluxiondb.ErrConnectionLost) {
				t.Fatalf("in-flight request: got %v, want ErrConnectionLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("in-flight request still pending 5 s after the kill")
		}
	}
	if d := time.Since(killed); d > 3*time.Second {
		t.Fatalf("in-flight requests took %v to fail", d)
	}
	eventually(t, 5*time.Second, "the client to notice the drop", func() bool { return !fluxiondb.IsConnected(c) })

	// While the server is down, calls fail fast instead of hanging.
	if _, err := c.FetchCollections(); err == nil {
		t.Fatal("FetchCollections succeeded with the server down")
	}

	srv.Restart()
	eventually(t, 10*time.Second, "the background reconnect", func() bool { return fluxiondb.IsConnected(c) })

	// The reconnected session carries the connection name, and works.
	observer := masterClient(t, srv)
	conns, err := observer.GetConnections()
	must(t, "GetConnections", err)
	if len(conns) != 2 || conns[0].Name == nil || *conns[0].Name != "survivor" {
		t.Fatalf("GetConnections after reconnect = %+v", conns)
	}
	cols, err := c.FetchCollections()
	must(t, "FetchCollections after reconnect", err)
	if len(cols) != 0 { // an in-memory server restarts empty
		t.Fatalf("FetchCollections after restart = %v", cols)
	}
}

// A graceful shutdown (close 1001) is followed by a reconnect too; with
// background reconnection disabled, the next call reconnects by itself.
func TestReconnectAfterGracefulRestart(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	var logs lockedBuffer
	autoOpts := quickOptions("auto")
	autoOpts.Logger = log.New(&logs, "", 0)
	auto := connectedClient(t, srv, testserver.MasterKey, autoOpts)
	opts := quickOptions("lazy")
	opts.ReconnectAttempts = -1
	lazy := connectedClient(t, srv, testserver.MasterKey, opts)

	if code := srv.Terminate(); code != 0 {
		t.Errorf("server exit code after SIGTERM = %d, want 0", code)
	}
	eventually(t, 5*time.Second, "both clients to notice the shutdown", func() bool {
		return !fluxiondb.IsConnected(auto) && !fluxiondb.IsConnected(lazy)
	})
	srv.Restart()
	eventually(t, 10*time.Second, "the background reconnect", func() bool { return fluxiondb.IsConnected(auto) })
	if fluxiondb.IsConnected(lazy) {
		t.Fatal("client with background reconnection disabled reconnected by itself")
	}
	_, err := lazy.FetchCollections()
	must(t, "lazy FetchCollections", err)
	conns, err := auto.GetConnections()
	must(t, "GetConnections", err)
	if len(conns) != 2 {
		t.Fatalf("GetConnections = %+v", conns)
	}

	text := logs.String()
	for _, want := range []string{"connected to", "connection lost", "server shutting down", "reconnecting"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, testserver.MasterKey) {
		t.Errorf("the API key was logged:\n%s", text)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Close is terminal: requests in flight and later calls return ErrClosed,
// which also matches context.Canceled.
func TestCloseIsTerminal(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)

	srv.Pause()
	t.Cleanup(func() { srv.Resume() })
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = c.GetKeys(fluxiondb.CollectionParam{Col: "x"})
		}(i)
	}
	eventually(t, 5*time.Second, "the requests to be in flight", func() bool {
		return fluxiondb.PendingRequests(c) == len(errs)
	})
	start := time.Now()
	c.Close()
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for _, err := range errs {
		if !errors.Is(err, fluxiondb.ErrClosed) {
			t.Fatalf("in-flight request after Close: %v", err)
		}
	}
	srv.Resume()

	if err := c.Connect(); !errors.Is(err, fluxiondb.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	_, err := c.FetchCollections()
	if !errors.Is(err, fluxiondb.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("FetchCollections after Close: %v", err)
	}
	c.Close() // harmless

	unused := fluxiondb.NewClient(srv.URL(), testserver.MasterKey)
	unused.Close()
}
