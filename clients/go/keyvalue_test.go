package fluxiondb_test

import (
	"reflect"
	"testing"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

func TestKeyValue(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)

	for k, v := range map[string]string{"env.prod": "v1", "env.stage": "v2", "region": "eu"} {
		must(t, "SetValue "+k, c.SetValue(fluxiondb.SetValueParams{Col: "config", Key: k, Value: v}))
	}

	v, err := c.GetValue(fluxiondb.GetValueParams{Col: "config", Key: "region"})
	must(t, "GetValue", err)
	if v != "eu" {
		t.Fatalf("GetValue = %q", v)
	}
	v, err = c.GetValue(fluxiondb.GetValueParams{Col: "config", Key: "missing"})
	must(t, "GetValue missing", err)
	if v != "" {
		t.Fatalf("GetValue missing = %q", v)
	}

	keys, err := c.GetKeys(fluxiondb.CollectionParam{Col: "config"})
	must(t, "GetKeys", err)
	if !reflect.DeepEqual(keys, []string{"env.prod", "env.stage", "region"}) {
		t.Fatalf("GetKeys = %v", keys)
	}

	all := map[string]string{"env.prod": "v1", "env.stage": "v2", "region": "eu"}
	for name, params := range map[string]fluxiondb.GetValuesParams{
		"nil key":   {Col: "config"},
		"empty key": {Col: "config", Key: ptr("")},
	} {
		got, err := c.GetValues(params)
		must(t, "GetValues "+name, err)
		if !reflect.DeepEqual(got, all) {
			t.Fatalf("GetValues %s = %v", name, got)
		}
	}
	got, err := c.GetValues(fluxiondb.GetValuesParams{Col: "config", Key: ptr("/^ENV/i")})
	must(t, "GetValues pattern", err)
	if !reflect.DeepEqual(got, map[string]string{"env.prod": "v1", "env.stage": "v2"}) {
		t.Fatalf("GetValues pattern = %v", got)
	}
	got, err = c.GetValues(fluxiondb.GetValuesParams{Col: "config", Key: ptr("region")})
	must(t, "GetValues exact", err)
	if !reflect.DeepEqual(got, map[string]string{"region": "eu"}) {
		t.Fatalf("GetValues exact = %v", got)
	}

	must(t, "DeleteValue", c.DeleteValue(fluxiondb.DeleteValueParams{Col: "config", Key: "region"}))
	must(t, "DeleteValue missing", c.DeleteValue(fluxiondb.DeleteValueParams{Col: "config", Key: "region"}))
	keys, err = c.GetKeys(fluxiondb.CollectionParam{Col: "config"})
	must(t, "GetKeys after delete", err)
	if !reflect.DeepEqual(keys, []string{"env.prod", "env.stage"}) {
		t.Fatalf("GetKeys after delete = %v", keys)
	}

	// A KV-only collection is listed; it goes away with its last entry.
	cols, err := c.FetchCollections()
	must(t, "FetchCollections", err)
	if !reflect.DeepEqual(cols, []string{"config"}) {
		t.Fatalf("FetchCollections = %v", cols)
	}
	must(t, "DeleteValue", c.DeleteValue(fluxiondb.DeleteValueParams{Col: "config", Key: "env.prod"}))
	must(t, "DeleteValue", c.DeleteValue(fluxiondb.DeleteValueParams{Col: "config", Key: "env.stage"}))
	cols, err = c.FetchCollections()
	must(t, "FetchCollections", err)
	if len(cols) != 0 {
		t.Fatalf("FetchCollections after emptying = %v", cols)
	}
}
