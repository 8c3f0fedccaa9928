package fluxiondb_test

import (
	"reflect"
	"testing"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
)

// seedSensors inserts the records of the protocol's fixture F (tests/vectors/protocol.json) into col.
func seedSensors(t *testing.T, c *fluxiondb.Client, col string) {
	t.Helper()
	must(t, "InsertMultipleRecords", c.InsertMultipleRecords([]fluxiondb.InsertMessageRequest{
		{TS: 100, Doc: "dev-1", Data: "temp:20 state:flying", Col: col},
		{TS: 200, Doc: "dev-1", Data: "temp:21 state:landed", Col: col},
		{TS: 300, Doc: "dev-1", Data: "temp:22 state:flying quality:bad", Col: col},
		{TS: 150, Doc: "dev-2", Data: "temp:30 state:flying", Col: col},
	}))
	must(t, "InsertSingleDocumentRecord", c.InsertSingleDocumentRecord(
		fluxiondb.InsertMessageRequest{TS: 50, Doc: "probe-9", Data: "temp:5 state:parked", Col: col}))
}

func TestRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)
	seedSensors(t, c, "sensors")

	cols, err := c.FetchCollections()
	must(t, "FetchCollections", err)
	if !reflect.DeepEqual(cols, []string{"sensors"}) {
		t.Fatalf("FetchCollections = %v", cols)
	}

	latest, err := c.FetchLatestRecords(fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 1000})
	must(t, "FetchLatestRecords", err)
	want := map[string]fluxiondb.RecordResponse{
		"dev-1":   {TS: 300, Data: "temp:22 state:flying quality:bad"},
		"dev-2":   {TS: 150, Data: "temp:30 state:flying"},
		"probe-9": {TS: 50, Data: "temp:5 state:parked"},
	}
	if !reflect.DeepEqual(latest, want) {
		t.Fatalf("FetchLatestRecords = %v", latest)
	}

	cases := []struct {
		name   string
		params fluxiondb.FetchLatestRecordsParams
		docs   []string
	}{
		{"ts bound", fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 100}, []string{"dev-1", "probe-9"}},
		{"from", fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 1000, From: ptr(int64(150))}, []string{"dev-1", "dev-2"}},
		{"doc", fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 1000, Doc: "dev-2"}, []string{"dev-2"}},
		{"doc pattern", fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 1000, Doc: "/^DEV-/i"}, []string{"dev-1", "dev-2"}},
		{"where filter", fluxiondb.FetchLatestRecordsParams{Col: "sensors", TS: 1000, Where: "state:flying", Filter: "quality:bad"}, []string{"dev-2"}},
		{"unknown collection", fluxiondb.FetchLatestRecordsParams{Col: "nope", TS: 1000}, nil},
	}
	for _, tc := range cases {
		got, err := c.FetchLatestRecords(tc.params)
		must(t, tc.name, err)
		if len(got) != len(tc.docs) {
			t.Fatalf("%s: got %v, want docs %v", tc.name, got, tc.docs)
		}
		for _, d := range tc.docs {
			if _, ok := got[d]; !ok {
				t.Fatalf("%s: got %v, want docs %v", tc.name, got, tc.docs)
			}
		}
	}

	recs, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "dev-1", From: 0, To: 1000})
	must(t, "FetchDocument", err)
	if tss := timestamps(recs); !reflect.DeepEqual(tss, []int64{100, 200, 300}) {
		t.Fatalf("FetchDocument = %v", recs)
	}
	recs, err = c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "dev-1", From: 0, To: 1000,
		Limit: ptr(2), Reverse: ptr(true)})
	must(t, "FetchDocument reverse", err)
	if !reflect.DeepEqual(recs, []fluxiondb.RecordResponse{{TS: 300, Data: "temp:22 state:flying quality:bad"}, {TS: 200, Data: "temp:21 state:landed"}}) {
		t.Fatalf("FetchDocument reverse limit = %v", recs)
	}
	recs, err = c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "dev-1", From: 0, To: 1000,
		Where: "/state:FLYING/i", Filter: "bad"})
	must(t, "FetchDocument where/filter", err)
	if tss := timestamps(recs); !reflect.DeepEqual(tss, []int64{100}) {
		t.Fatalf("FetchDocument where/filter = %v", recs)
	}
	recs, err = c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "ghost", From: 0, To: 1000})
	must(t, "FetchDocument unknown", err)
	if len(recs) != 0 {
		t.Fatalf("FetchDocument unknown doc = %v", recs)
	}

	// Same timestamp replaces the data.
	must(t, "replace", c.InsertSingleDocumentRecord(fluxiondb.InsertMessageRequest{TS: 200, Doc: "dev-1", Data: "temp:99", Col: "sensors"}))
	recs, err = c.FetchDocument(fluxiondb.FetchRecordsParams{Col: "sensors", Doc: "dev-1", From: 200, To: 200})
	must(t, "FetchDocument after replace", err)
	if !reflect.DeepEqual(recs, []fluxiondb.RecordResponse{{TS: 200, Data: "temp:99"}}) {
		t.Fatalf("after replace = %v", recs)
	}
}

func TestRecordDeletes(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	c := masterClient(t, srv)
	seedSensors(t, c, "sensors")
	seedSensors(t, c, "other")

	docTimestamps := func(col, doc string) []int64 {
		t.Helper()
		recs, err := c.FetchDocument(fluxiondb.FetchRecordsParams{Col: col, Doc: doc, From: 0, To: 1 << 40})
		must(t, "FetchDocument", err)
		return timestamps(recs)
	}

	must(t, "DeleteDocumentRecord", c.DeleteDocumentRecord(fluxiondb.DeleteRecord{Col: "sensors", Doc: "dev-1", TS: 200}))
	if got := docTimestamps("sensors", "dev-1"); !reflect.DeepEqual(got, []int64{100, 300}) {
		t.Fatalf("after DeleteDocumentRecord: %v", got)
	}
	must(t, "DeleteDocumentRecord missing", c.DeleteDocumentRecord(fluxiondb.DeleteRecord{Col: "sensors", Doc: "dev-1", TS: 999}))

	must(t, "DeleteMultipleRecords", c.DeleteMultipleRecords([]fluxiondb.DeleteRecord{
		{Col: "sensors", Doc: "dev-1", TS: 100}, {Col: "sensors", Doc: "dev-2", TS: 150},
	}))
	if got := docTimestamps("sensors", "dev-1"); !reflect.DeepEqual(got, []int64{300}) {
		t.Fatalf("after DeleteMultipleRecords: %v", got)
	}
	if got := docTimestamps("sensors", "dev-2"); len(got) != 0 {
		t.Fatalf("dev-2 after DeleteMultipleRecords: %v", got)
	}
	must(t, "DeleteMultipleRecords empty", c.DeleteMultipleRecords([]fluxiondb.DeleteRecord{}))

	must(t, "DeleteRecordsRange", c.DeleteRecordsRange(fluxiondb.DeleteRecordsRange{Col: "other", Doc: "dev-1", FromTS: 150, ToTS: 300}))
	if got := docTimestamps("other", "dev-1"); !reflect.DeepEqual(got, []int64{100}) {
		t.Fatalf("after DeleteRecordsRange: %v", got)
	}

	must(t, "DeleteDocument", c.DeleteDocument(fluxiondb.DeleteDocumentParams{Col: "other", Doc: "probe-9"}))
	if got := docTimestamps("other", "probe-9"); len(got) != 0 {
		t.Fatalf("after DeleteDocument: %v", got)
	}
	if got := docTimestamps("sensors", "probe-9"); len(got) != 1 {
		t.Fatalf("DeleteDocument touched another collection: %v", got)
	}

	must(t, "DeleteCollection", c.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: "other"}))
	cols, err := c.FetchCollections()
	must(t, "FetchCollections", err)
	if !reflect.DeepEqual(cols, []string{"sensors"}) {
		t.Fatalf("FetchCollections after DeleteCollection = %v", cols)
	}
	must(t, "DeleteCollection unknown", c.DeleteCollection(fluxiondb.DeleteCollectionParams{Col: "nope"}))

	// An empty Col deletes the document from every collection (wire
	// behaviour of the official SDK).
	seedSensors(t, c, "third")
	must(t, "DeleteDocument all", c.DeleteDocument(fluxiondb.DeleteDocumentParams{Doc: "probe-9"}))
	if docTimestamps("sensors", "probe-9") != nil || docTimestamps("third", "probe-9") != nil {
		t.Fatal("DeleteDocument with empty Col left probe-9 somewhere")
	}
}

func timestamps(recs []fluxiondb.RecordResponse) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.TS)
	}
	return out
}
