package fluxiondb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// quickOptions are client options with short delays, for tests.
func quickOptions(name string) fluxiondb.Options {
	return fluxiondb.Options{
		ConnectionName:    name,
		RequestTimeout:    10 * time.Second,
		ReconnectAttempts: 20,
		ReconnectMinDelay: 50 * time.Millisecond,
		ReconnectMaxDelay: 300 * time.Millisecond,
	}
}

// masterClient returns a connected master-key client, closed at the end of
// the test.
func masterClient(t *testing.T, srv *testserver.Server) *fluxiondb.Client {
	t.Helper()
	return connectedClient(t, srv, testserver.MasterKey, quickOptions(""))
}

func connectedClient(t *testing.T, srv *testserver.Server, key string, opts fluxiondb.Options) *fluxiondb.Client {
	t.Helper()
	c := fluxiondb.NewClientWithOptions(srv.URL(), key, opts)
	t.Cleanup(c.Close)
	if err := c.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

// scopedClient creates key with scope (through master) and returns a
// connected client using it.
func scopedClient(t *testing.T, srv *testserver.Server, master *fluxiondb.Client, key string, scope fluxiondb.ApiKeyScope) *fluxiondb.Client {
	t.Helper()
	if _, err := master.AddAPIKey(key, scope); err != nil {
		t.Fatalf("AddAPIKey(%q): %v", key, err)
	}
	return connectedClient(t, srv, key, quickOptions(""))
}

// wantServerError checks that err is a *ServerError with exactly msg.
func wantServerError(t *testing.T, what string, err error, msg string) {
	t.Helper()
	var se *fluxiondb.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("%s: want server error %q, got %v (%T)", what, msg, err, err)
	}
	if se.Message != msg || err.Error() != msg {
		t.Fatalf("%s: want server error %q, got %q", what, msg, se.Message)
	}
}

// must fails the test on a non-nil error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool, details ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var more []string
			for _, d := range details {
				more = append(more, d())
			}
			t.Fatalf("timed out after %v waiting for %s\n%s", timeout, what, strings.Join(more, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ctxTimeout returns a context bounded by d, canceled at the end of the test.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// contains reports whether s contains sub (for error texts).
func contains(err error, sub string) bool {
	return err != nil && strings.Contains(err.Error(), sub)
}

func ptr[T any](v T) *T { return &v }
