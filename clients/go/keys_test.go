package fluxiondb_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)

	resp, err := c.AddAPIKey("ro-key", fluxiondb.ApiKeyScopeReadOnly)
	must(t, "AddAPIKey", err)
	if resp.Status != "ok" || resp.Scope != "readonly" || resp.Error != "" || resp.ID == "" {
		t.Fatalf("AddAPIKey = %+v", resp)
	}
	_, err = c.AddAPIKey("rw-key", fluxiondb.ApiKeyScopeReadWrite)
	must(t, "AddAPIKey rw", err)
	resp, err = c.AddAPIKey("rwd-key", fluxiondb.ApiKeyScope("Read-Write-Delete"))
	must(t, "AddAPIKey alias", err)
	if resp.Scope != "read_write_delete" {
		t.Fatalf("AddAPIKey alias scope = %q", resp.Scope)
	}
	// Re-adding the master key is a successful no-op.
	resp, err = c.AddAPIKey(testserver.MasterKey, fluxiondb.ApiKeyScopeReadOnly)
	must(t, "AddAPIKey master", err)
	if resp.Scope != "read_write_delete" {
		t.Fatalf("AddAPIKey master scope = %q", resp.Scope)
	}

	keys, err := c.ListAPIKeys()
	must(t, "ListAPIKeys", err)
	want := []fluxiondb.APIKeyInfo{
		{Key: testserver.MasterKey, Scope: "read_write_delete", Deletable: false},
		{Key: "ro-key", Scope: "readonly", Deletable: true},
		{Key: "rw-key", Scope: "read_write", Deletable: true},
		{Key: "rwd-key", Scope: "read_write_delete", Deletable: true},
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("ListAPIKeys = %+v", keys)
	}

	resp, err = c.RemoveAPIKey("rw-key")
	must(t, "RemoveAPIKey", err)
	if resp.Status != "ok" || resp.Error != "" {
		t.Fatalf("RemoveAPIKey = %+v", resp)
	}

	// Refusals: the response carries Error AND the error is non-nil.
	refusals := []struct {
		name string
		call func() (fluxiondb.ManageAPIKeyResponse, error)
		msg  string
	}{
		{"invalid scope", func() (fluxiondb.ManageAPIKeyResponse, error) { return c.AddAPIKey("k", "admin") }, "invalid scope"},
		{"empty key", func() (fluxiondb.ManageAPIKeyResponse, error) { return c.AddAPIKey("", fluxiondb.ApiKeyScopeReadOnly) }, "api key cannot be empty"},
		{"remove unknown", func() (fluxiondb.ManageAPIKeyResponse, error) { return c.RemoveAPIKey("rw-key") }, "api key not found"},
		{"remove master", func() (fluxiondb.ManageAPIKeyResponse, error) { return c.RemoveAPIKey(testserver.MasterKey) }, "api key cannot be removed"},
	}
	for _, r := range refusals {
		resp, err := r.call()
		wantServerError(t, r.name, err, r.msg)
		if resp.Error != r.msg || resp.ID == "" {
			t.Fatalf("%s: response = %+v", r.name, resp)
		}
	}

	// Non-master keys may not manage keys.
	rwd := connectedClient(t, srv, "rwd-key", quickOptions(""))
	resp, err = rwd.AddAPIKey("x", fluxiondb.ApiKeyScopeReadOnly)
	wantServerError(t, "AddAPIKey by rwd", err, "only the master key may manage API keys")
	if resp.Error != "only the master key may manage API keys" {
		t.Fatalf("AddAPIKey by rwd response = %+v", resp)
	}
	list, err := rwd.ListAPIKeys()
	wantServerError(t, "ListAPIKeys by rwd", err, "only the master key may manage API keys")
	if list != nil {
		t.Fatalf("ListAPIKeys by rwd returned %v", list)
	}
	ro := connectedClient(t, srv, "ro-key", quickOptions(""))
	_, err = ro.RemoveAPIKey("rwd-key")
	wantServerError(t, "RemoveAPIKey by ro", err, "permission denied")
}

func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	master := masterClient(t, srv)
	seedSensors(t, master, "sensors")
	must(t, "SetValue", master.SetValue(fluxiondb.SetValueParams{Col: "config", Key: "k", Value: "v"}))

	ro := scopedClient(t, srv, master, "ro-key", fluxiondb.ApiKeyScopeReadOnly)
	rw := scopedClient(t, srv, master, "rw-key", fluxiondb.ApiKeyScopeReadWrite)

	// Reads work for readonly keys.
	if _, err := ro.FetchCollections(); err != nil {
		t.Fatalf("readonly FetchCollections: %v", err)
	}
	if _, err := ro.GetConnections(); err != nil {
		t.Fatalf("readonly GetConnections: %v", err)
	}

	rec := fluxiondb.InsertMessageRequest{TS: 1, Doc: "d", Data: "x", Col: "sensors"}
	denied := map[string]error{
		"ro InsertMultipleRecords":      ro.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{rec}),
		"ro InsertSingleDocumentRecord": ro.InsertSingleDocumentRecord(rec),
		"ro SetValue":                   ro.SetValue(fluxiondb.SetValueParams{Col: "config", Key: "x", Value: "y"}),
		"rw DeleteCollection":           rw.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: "sensors"}),
		"rw DeleteDocument":             rw.DeleteDocument(fluxiondb.DeleteDocumentParams{Col: "sensors", Doc: "dev-1"}),
		"rw DeleteDocumentRecord":       rw.DeleteDocumentRecord(fluxiondb.DeleteRecord{Col: "sensors", Doc: "dev-1", TS: 100}),
		"rw DeleteMultipleRecords":      rw.DeleteMultipleRecords([]fluxiondb.DeleteRecord{{Col: "sensors", Doc: "dev-1", TS: 100}}),
		"rw DeleteRecordsRange":         rw.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "sensors", Doc: "dev-1", FromTS: 1, ToTS: 1000}),
		"rw DeleteValue":                rw.DeleteValue(fluxiondb.DeleteValueParams{Col: "config", Key: "k"}),
	}
	for name, err := range denied {
		wantServerError(t, name, err, "permission denied")
	}
	_, err := ro.ListAPIKeys()
	wantServerError(t, "ro ListAPIKeys", err, "permission denied")

	// Nothing changed.
	recs, err := master.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "dev-1", From: 0, To: 1000})
	must(t, "FetchDocument", err)
	if len(recs) != 3 {
		t.Fatalf("records changed by refused requests: %v", recs)
	}
	// A refused request leaves the connection usable.
	must(t, "rw insert after refusal", rw.InsertSingleDocumentRecord(rec))

	var se *fluxiondb.ServerError
	err = ro.InsertSingleDocumentRecord(rec)
	if !errors.As(err, &se) || se.Type != "ins" || se.ID == "" {
		t.Fatalf("ServerError fields: %+v", se)
	}
}

// A revoked key's connection is closed by the server; its client then fails
// with the refusal instead of retrying forever.
func TestRevokedKey(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	master := masterClient(t, srv)
	ro := scopedClient(t, srv, master, "ro-key", fluxiondb.ApiKeyScopeReadOnly)

	_, err := master.RemoveAPIKey("ro-key")
	must(t, "RemoveAPIKey", err)

	var authErr *fluxiondb.AuthError
	eventually(t, 5*time.Second, "the revoked client to report the refused key", func() bool {
		_, err := ro.FetchCollections()
		return errors.As(err, &authErr)
	})
	if authErr.Code != 1008 || authErr.Reason != "Unknown API key" {
		t.Fatalf("AuthError = %+v", authErr)
	}
}
