package fluxiondb_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// A handler's panic is not recovered by the client: it runs on the
// subscription's goroutine, so it ends the program as any unrecovered panic
// does (the README says so). The program runs in a child process.
func TestHandlerPanicIsNotRecovered(t *testing.T) {
	if url := os.Getenv("FLUXIONDB_PANIC_CHILD_URL"); url != "" {
		panickingSubscriber(url)
		return
	}
	t.Parallel()
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHandlerPanicIsNotRecovered$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FLUXIONDB_PANIC_CHILD_URL="+srv.URL())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child did not end: %s", out)
	}
	if err == nil || !strings.Contains(string(out), "panic: handler bug") {
		t.Fatalf("child: %v, output:\n%s", err, out)
	}
}

// panickingSubscriber subscribes with a handler that panics, writes, and
// returns only if the panic did not end the process.
func panickingSubscriber(url string) {
	c := fluxiondb.NewClient(url, testserver.MasterKey)
	defer c.Close()
	_, err := c.Subscribe(context.Background(), fluxiondb.SubscribeParams{Col: "p1"}, func(ev fluxiondb.Event) {
		if _, ok := ev.(*fluxiondb.RecordEvent); ok {
			panic("handler bug")
		}
	})
	if err != nil {
		println("Subscribe:", err.Error())
		return
	}
	if err := c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{Col: "p1", Doc: "d", TS: 1, Data: "v"}); err != nil {
		println("insert:", err.Error())
		return
	}
	time.Sleep(10 * time.Second) // the panic ends the process long before
	println("no panic")
}
