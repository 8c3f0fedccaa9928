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

// A connection the server refuses with close 1013 (here: at its connection
// limit) is a *RefusedError with the code and reason, not an *AuthError; the
// background reconnection keeps trying through such refusals, and resumes the
// subscriptions once the server takes the connection.
func TestConnectionRefusedWith1013IsRetried(t *testing.T) {
	t.Parallel()
	srv := testserver.StartWithArgs(t, "--max-connections", "1")
	proxy := startGateProxy(t, srv.Port)
	logs := &syncLog{}
	opts := quickOptions("b")
	opts.Logger = log.New(logs, "", 0)
	b := fluxiondb.NewClientWithOptions(proxy.url(), testserver.MasterKey, opts)
	t.Cleanup(b.Close)
	var ev events
	sub, err := b.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "r1"}, ev.add)
	must(t, "Subscribe", err) // b holds the only connection

	a := fluxiondb.NewClientWithOptions(srv.URL(), testserver.MasterKey, quickOptions("a"))
	t.Cleanup(a.Close)
	err = a.Connect()
	var refused *fluxiondb.RefusedError
	var authErr *fluxiondb.AuthError
	if !errors.As(err, &refused) || refused.Code != 1013 || refused.Reason != "connection limit reached" || errors.As(err, &authErr) {
		t.Fatalf("Connect = %v (%T), want a *RefusedError 1013 \"connection limit reached\"", err, err)
	}
	if want := "server refused the connection: connection limit reached (close 1013"; !contains(err, want) || contains(err, "authentication") {
		t.Fatalf("error text %q, want it to contain %q", err, want)
	}

	// b's connection drops; its reconnect attempt waits at the proxy while a
	// takes the connection the server freed.
	proxy.holdNew()
	proxy.cut()
	proxy.waitHeldNew("b's reconnect attempt")
	eventually(t, 10*time.Second, "a connected", func() bool { return a.Connect() == nil })
	proxy.releaseNew()
	eventually(t, 10*time.Second, "b's attempt refused with 1013", func() bool {
		return strings.Contains(logs.String(), "server refused the connection: connection limit reached (close 1013")
	}, logs.String)
	a.Close()
	eventually(t, 10*time.Second, "b's subscription resumed", func() bool {
		for _, e := range ev.snapshot() {
			if _, ok := e.(*fluxiondb.ReconnectEvent); ok {
				return true
			}
		}
		return false
	}, logs.String)
	if !sub.Active() {
		t.Fatalf("subscription ended: %#v", ev.snapshot())
	}
}

// syncLog is a log destination safe for concurrent use.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
