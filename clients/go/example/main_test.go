package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// The example runs to completion against a real server.
func TestExample(t *testing.T) {
	srv := testserver.Start(t)
	var out bytes.Buffer
	if err := run(&out, srv.URL(), testserver.MasterKey); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"inserted 4 records",
		`latest dev-1: ts=now-10 data={"temp":21.0,"state":"landed"}`,
		"history of dev-1 (2 records)",
		"documents whose latest record is flying: 1",
		"value of unit: celsius",
		"collections: [example.sensors]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
