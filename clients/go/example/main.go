// Command example inserts a few records and key/value entries into a
// FluxionDB server, reads them back and prints them.
//
//	FLUXIONDB_URL=ws://127.0.0.1:8080 FLUXIONDB_API_KEY=my-secret-key go run ./example
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
)

func main() {
	url := getenv("FLUXIONDB_URL", "ws://127.0.0.1:8080")
	apiKey := getenv("FLUXIONDB_API_KEY", os.Getenv("FLUXIONDB_APIKEY")) // the second is the upstream CLI's name
	if apiKey == "" {
		log.Fatal("set FLUXIONDB_API_KEY to the server's secret key (or a read_write_delete key)")
	}

	if err := run(os.Stdout, url, apiKey); err != nil {
		log.Fatal(err)
	}
}

// run is the example itself: connect, insert, read back, print to out.
func run(out io.Writer, url, apiKey string) error {
	client := fluxiondb.NewClientWithName(url, apiKey, "go-example")
	defer client.Close()
	if err := client.Connect(); err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	fmt.Fprintln(out, "connected to", url)

	const col = "example.sensors"
	now := time.Now().Unix()
	records := []fluxiondb.InsertMessageRequest{
		{TS: now - 20, Doc: "dev-1", Data: `{"temp":20.5,"state":"flying"}`, Col: col},
		{TS: now - 10, Doc: "dev-1", Data: `{"temp":21.0,"state":"landed"}`, Col: col},
		{TS: now - 15, Doc: "dev-2", Data: `{"temp":30.2,"state":"flying"}`, Col: col},
	}
	if err := client.InsertMultipleRecords(records); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if err := client.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{
		TS: now, Doc: "dev-2", Data: `{"temp":31.0,"state":"flying"}`, Col: col,
	}); err != nil {
		return fmt.Errorf("insert one: %w", err)
	}
	fmt.Fprintf(out, "inserted %d records into %q\n", len(records)+1, col)

	latest, err := client.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: col, TS: now})
	if err != nil {
		return fmt.Errorf("latest records: %w", err)
	}
	for _, doc := range []string{"dev-1", "dev-2"} {
		fmt.Fprintf(out, "latest %s: ts=now%+d data=%s\n", doc, latest[doc].TS-now, latest[doc].Data)
	}

	limit := 10
	history, err := client.FetchDocument(fluxiondb.FetchRecordsParams{Col: col, Doc: "dev-1", From: 0, To: now, Limit: &limit})
	if err != nil {
		return fmt.Errorf("document history: %w", err)
	}
	fmt.Fprintf(out, "history of dev-1 (%d records):\n", len(history))
	for _, r := range history {
		fmt.Fprintf(out, "  ts=now%+d data=%s\n", r.TS-now, r.Data)
	}

	flying, err := client.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: col, TS: now, Where: `"state":"flying"`})
	if err != nil {
		return fmt.Errorf("filtered query: %w", err)
	}
	fmt.Fprintf(out, "documents whose latest record is flying: %d\n", len(flying))

	if err := client.SetValue(fluxiondb.SetValueParams{Col: col, Key: "unit", Value: "celsius"}); err != nil {
		return fmt.Errorf("set value: %w", err)
	}
	unit, err := client.GetValue(fluxiondb.GetValueParams{Col: col, Key: "unit"})
	if err != nil {
		return fmt.Errorf("get value: %w", err)
	}
	fmt.Fprintln(out, "value of unit:", unit)

	// Context-aware variants take a deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cols, err := client.FetchCollectionsContext(ctx)
	if err != nil {
		return fmt.Errorf("collections: %w", err)
	}
	fmt.Fprintln(out, "collections:", cols)

	if err := client.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: col}); err != nil {
		return fmt.Errorf("delete collection: %w", err)
	}
	fmt.Fprintf(out, "deleted %q\n", col)
	return nil
}

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
