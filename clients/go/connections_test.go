package fluxiondb_test

import (
	"testing"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

func TestGetConnectionsAndNames(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)

	named := fluxiondb.NewClientWithName(srv.URL(), testserver.MasterKey, "ops team")
	t.Cleanup(named.Close)
	must(t, "Connect named", named.Connect())
	must(t, "Connect again", named.Connect()) // no-op when connected

	plain := fluxiondb.NewClient(srv.URL(), testserver.MasterKey)
	t.Cleanup(plain.Close)
	conns, err := plain.GetConnections() // connects lazily
	must(t, "GetConnections", err)
	if len(conns) != 2 {
		t.Fatalf("GetConnections = %+v", conns)
	}
	first, second := conns[0], conns[1] // oldest first
	if first.Name == nil || *first.Name != "ops team" || first.Self || first.IP != "127.0.0.1" || first.Since < 0 {
		t.Fatalf("named entry = %+v", first)
	}
	if second.Name != nil || !second.Self {
		t.Fatalf("plain entry = %+v (name %v)", second, second.Name)
	}

	// SetConnectionName takes effect at the next connection.
	late := fluxiondb.NewClient(srv.URL(), testserver.MasterKey)
	t.Cleanup(late.Close)
	late.SetConnectionName("renamed")
	conns, err = late.GetConnections()
	must(t, "GetConnections late", err)
	found := false
	for _, ci := range conns {
		if ci.Self {
			found = ci.Name != nil && *ci.Name == "renamed"
		}
	}
	if !found {
		t.Fatalf("SetConnectionName not applied: %+v", conns)
	}
}

// The api-key and name given in the URL are replaced, other parameters kept.
func TestURLQueryReplaced(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := fluxiondb.NewClientWithName(srv.URL()+"/?api-key=wrong&name=old&x=1", testserver.MasterKey, "new")
	t.Cleanup(c.Close)
	conns, err := c.GetConnections()
	must(t, "GetConnections", err)
	if len(conns) != 1 || conns[0].Name == nil || *conns[0].Name != "new" {
		t.Fatalf("GetConnections = %+v", conns)
	}
}
