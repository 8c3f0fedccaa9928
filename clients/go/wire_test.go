package fluxiondb_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
)

// Every method sends the payload shape of the official Go SDK, byte for
// byte.
func TestWirePayloadShapes(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	c := fluxiondb.NewClientWithName(f.URL()+"/?api-key=old&keep=1", "secret key+1", "my app")
	t.Cleanup(c.Close)

	cases := []struct {
		call func() error
		typ  string
		data string
	}{
		{func() error { _, err := c.FetchCollections(); return err }, "cols", `{}`},
		{func() error { _, err := c.GetConnections(); return err }, "conn", `{}`},
		{func() error {
			return c.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{{TS: 1, Doc: "d", Data: "x", Col: "c"}})
		}, "ins", `[{"ts":1,"doc":"d","data":"x","col":"c"}]`},
		{func() error { return c.InsertMultipleRecords(nil) }, "ins", `null`},
		{func() error {
			return c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: 2, Doc: "d", Data: "", Col: "c"})
		}, "ins", `[{"ts":2,"doc":"d","data":"","col":"c"}]`},
		{func() error {
			_, err := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "c", TS: 5})
			return err
		}, "qry", `{"col":"c","ts":5}`},
		{func() error {
			_, err := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "c", TS: 5, Doc: "d", From: ptr(int64(0)), Where: "w", Filter: "f"})
			return err
		}, "qry", `{"col":"c","ts":5,"doc":"d","from":0,"where":"w","filter":"f"}`},
		{func() error {
			_, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "c", Doc: "d", To: 9})
			return err
		}, "qdoc", `{"col":"c","doc":"d","from":0,"to":9}`},
		{func() error {
			_, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "c", Doc: "d", From: -1, To: 9, Limit: ptr(0), Reverse: ptr(false), Where: "w", Filter: "f"})
			return err
		}, "qdoc", `{"col":"c","doc":"d","from":-1,"to":9,"limit":0,"reverse":false,"where":"w","filter":"f"}`},
		{func() error { return c.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: "c"}) }, "dcol", `{"col":"c"}`},
		{func() error { return c.DeleteDocument(fluxiondb.DeleteDocumentParams{Doc: "d"}) }, "ddoc", `{"doc":"d","col":""}`},
		{func() error { return c.DeleteDocumentRecord(fluxiondb.DeleteRecord{Doc: "d", Col: "c", TS: 3}) }, "drec", `{"doc":"d","col":"c","ts":3}`},
		{func() error { return c.DeleteMultipleRecords([]fluxiondb.DeleteRecord{{Doc: "d", Col: "c", TS: 3}}) }, "dmrec", `[{"doc":"d","col":"c","ts":3}]`},
		{func() error { return c.DeleteMultipleRecords(nil) }, "dmrec", `null`},
		{func() error {
			return c.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Doc: "d", Col: "c", FromTS: 1, ToTS: 2})
		}, "drrng", `{"doc":"d","col":"c","fromTs":1,"toTs":2}`},
		{func() error { return c.SetValue(fluxiondb.SetValueParams{Col: "c", Key: "k", Value: "v"}) }, "sval", `{"col":"c","key":"k","value":"v"}`},
		{func() error { _, err := c.GetValue(fluxiondb.GetValueParams{Col: "c", Key: "k"}); return err }, "gval", `{"col":"c","key":"k"}`},
		{func() error { _, err := c.GetKeys(fluxiondb.CollectionParam{Col: "c"}); return err }, "gkeys", `{"col":"c"}`},
		{func() error { _, err := c.GetValues(fluxiondb.GetValuesParams{Col: "c"}); return err }, "gvals", `{"col":"c"}`},
		{func() error { _, err := c.GetValues(fluxiondb.GetValuesParams{Col: "c", Key: ptr("")}); return err }, "gvals", `{"col":"c","key":""}`},
		{func() error { _, err := c.GetValues(fluxiondb.GetValuesParams{Col: "c", Key: ptr("/^k/")}); return err }, "gvalues", `{"col":"c","key":"/^k/"}`},
		{func() error { return c.DeleteValue(fluxiondb.DeleteValueParams{Col: "c", Key: "k"}) }, "rval", `{"col":"c","key":"k"}`},
		{func() error { _, err := c.AddAPIKey("k", fluxiondb.ApiKeyScopeReadWrite); return err }, "keys", `{"action":"add","key":"k","scope":"read_write"}`},
		{func() error { _, err := c.RemoveAPIKey("k"); return err }, "keys", `{"action":"remove","key":"k"}`},
		{func() error { _, err := c.ListAPIKeys(); return err }, "keys", `{"action":"list","key":""}`},
	}
	idPattern := regexp.MustCompile(`^[a-z0-9]{20}$`)
	seen := map[string]bool{}
	for i, tc := range cases {
		if err := tc.call(); err != nil {
			t.Fatalf("case %d (%s): %v", i, tc.typ, err)
		}
		frame := <-f.frames
		var env map[string]any
		if err := json.Unmarshal(frame, &env); err != nil || len(env) != 3 {
			t.Fatalf("case %d: envelope %s", i, frame)
		}
		id, _ := env["id"].(string)
		if !idPattern.MatchString(id) || seen[id] {
			t.Fatalf("case %d: bad or repeated id %q", i, id)
		}
		seen[id] = true
		if env["type"] != tc.typ || env["data"] != tc.data {
			t.Fatalf("case %d: sent type %v data %v, want %s %s", i, env["type"], env["data"], tc.typ, tc.data)
		}
	}

	q := <-f.queries
	if q.Get("api-key") != "secret key+1" || q.Get("name") != "my app" || q.Get("keep") != "1" || len(q["api-key"]) != 1 {
		t.Fatalf("upgrade query = %v", q)
	}
}

// Server errors become *ServerError; answers without a known id are
// ignored.
func TestWireErrorAnswers(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.reply = func(frame []byte) [][]byte {
		var env struct{ ID, Type string }
		json.Unmarshal(frame, &env)
		out, _ := json.Marshal(map[string]string{"id": env.ID, "error": "boom " + env.Type})
		return [][]byte{
			[]byte(`{"error":"invalid message: expected a JSON object"}`), // id-less error
			[]byte(`not json`),
			[]byte(`{"id":"someone-else","collections":["x"]}`),
			out,
		}
	}
	c := fluxiondb.NewClient(f.URL(), "k")
	t.Cleanup(c.Close)

	_, err := c.FetchCollections()
	var se *fluxiondb.ServerError
	if !errors.As(err, &se) || se.Message != "boom cols" || se.Type != "cols" || err.Error() != "boom cols" {
		t.Fatalf("FetchCollections = %v", err)
	}
	resp, err := c.AddAPIKey("k", fluxiondb.ApiKeyScopeReadOnly)
	if !errors.As(err, &se) || resp.Error != "boom keys" || resp.ID != se.ID {
		t.Fatalf("AddAPIKey = %+v, %v", resp, err)
	}
	keys, err := c.ListAPIKeys()
	if err == nil || err.Error() != "boom keys" || keys != nil {
		t.Fatalf("ListAPIKeys = %v, %v", keys, err)
	}
}

// Connection set-up failures.
func TestWireConnectFailures(t *testing.T) {
	t.Parallel()
	opts := fluxiondb.Options{ReadyTimeout: 200 * time.Millisecond, HandshakeTimeout: time.Second}

	t.Run("no ready frame", func(t *testing.T) {
		f := newFakeServer(t)
		f.ready = ""
		c := fluxiondb.NewClientWithOptions(f.URL(), "k", opts)
		defer c.Close()
		if err := c.Connect(); !contains(err, "authentication failed") {
			t.Fatalf("Connect = %v", err)
		}
	})
	t.Run("first frame not ready", func(t *testing.T) {
		f := newFakeServer(t)
		f.ready = `{"id":"x"}`
		c := fluxiondb.NewClientWithOptions(f.URL(), "k", opts)
		defer c.Close()
		if err := c.Connect(); !contains(err, "expected a ready frame") {
			t.Fatalf("Connect = %v", err)
		}
	})
	t.Run("HTTP 401", func(t *testing.T) {
		srv := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Unknown API key", http.StatusUnauthorized)
		})
		c := fluxiondb.NewClientWithOptions(srv, "k", opts)
		defer c.Close()
		err := c.Connect()
		var authErr *fluxiondb.AuthError
		if !errors.As(err, &authErr) || authErr.HTTPStatus != 401 || authErr.Reason != "Unknown API key" {
			t.Fatalf("Connect = %v", err)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		c := fluxiondb.NewClient("ftp://example.invalid", "k")
		defer c.Close()
		if err := c.Connect(); !contains(err, "scheme") {
			t.Fatalf("Connect = %v", err)
		}
	})
	t.Run("context bounds a stuck handshake", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() { // accept and never answer
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
			}
		}()
		c := fluxiondb.NewClient("ws://"+ln.Addr().String(), "k")
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := c.ConnectContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ConnectContext = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("ConnectContext took %v", d)
		}
		c.Close() // also stops the attempt still running
	})
}

func newHTTPServer(t *testing.T, h http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "ws://" + ln.Addr().String() + "/"
}
