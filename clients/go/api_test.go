package fluxiondb_test

import (
	"reflect"
	"strings"
	"testing"

	fluxiondb "github.com/fluxiondb/fluxiondb/clients/go"
)

// The exported surface of the official SDK. These
// assignments fail to compile if a signature drifts.
var (
	_ func(string, string) *fluxiondb.Client         = fluxiondb.NewClient
	_ func(string, string, string) *fluxiondb.Client = fluxiondb.NewClientWithName
	_ func(*fluxiondb.Client, string)                = (*fluxiondb.Client).SetConnectionName
	_ func(*fluxiondb.Client) error                  = (*fluxiondb.Client).Connect
	_ func(*fluxiondb.Client)                        = (*fluxiondb.Client).Close

	_ func(*fluxiondb.Client) ([]string, error)                                                                = (*fluxiondb.Client).FetchCollections
	_ func(*fluxiondb.Client) ([]fluxiondb.ConnectionInfo, error)                                              = (*fluxiondb.Client).GetConnections
	_ func(*fluxiondb.Client, fluxiondb.FetchLatestRecordsParams) (map[string]fluxiondb.RecordResponse, error) = (*fluxiondb.Client).FetchLatestRecords
	_ func(*fluxiondb.Client, fluxiondb.DeleteCollectionParams) error                                          = (*fluxiondb.Client).DeleteCollection
	_ func(*fluxiondb.Client, []fluxiondb.InsertMessageRequest) error                                          = (*fluxiondb.Client).InsertMultipleRecords
	_ func(*fluxiondb.Client, fluxiondb.InsertMessageRequest) error                                            = (*fluxiondb.Client).InsertSingleDocumentRecord
	_ func(*fluxiondb.Client, fluxiondb.FetchRecordsParams) ([]fluxiondb.RecordResponse, error)                = (*fluxiondb.Client).FetchDocument
	_ func(*fluxiondb.Client, fluxiondb.DeleteDocumentParams) error                                            = (*fluxiondb.Client).DeleteDocument
	_ func(*fluxiondb.Client, fluxiondb.DeleteRecord) error                                                    = (*fluxiondb.Client).DeleteDocumentRecord
	_ func(*fluxiondb.Client, []fluxiondb.DeleteRecord) error                                                  = (*fluxiondb.Client).DeleteMultipleRecords
	_ func(*fluxiondb.Client, fluxiondb.DeleteRecordsRange) error                                              = (*fluxiondb.Client).DeleteRecordsRange
	_ func(*fluxiondb.Client, fluxiondb.SetValueParams) error                                                  = (*fluxiondb.Client).SetValue
	_ func(*fluxiondb.Client, fluxiondb.GetValueParams) (string, error)                                        = (*fluxiondb.Client).GetValue
	_ func(*fluxiondb.Client, fluxiondb.CollectionParam) ([]string, error)                                     = (*fluxiondb.Client).GetKeys
	_ func(*fluxiondb.Client, fluxiondb.GetValuesParams) (map[string]string, error)                            = (*fluxiondb.Client).GetValues
	_ func(*fluxiondb.Client, fluxiondb.DeleteValueParams) error                                               = (*fluxiondb.Client).DeleteValue
	_ func(*fluxiondb.Client, string, fluxiondb.ApiKeyScope) (fluxiondb.ManageAPIKeyResponse, error)           = (*fluxiondb.Client).AddAPIKey
	_ func(*fluxiondb.Client, string) (fluxiondb.ManageAPIKeyResponse, error)                                  = (*fluxiondb.Client).RemoveAPIKey
	_ func(*fluxiondb.Client) ([]fluxiondb.APIKeyInfo, error)                                                  = (*fluxiondb.Client).ListAPIKeys
)

// Every struct has exactly the fields, types and JSON tags of the official
// SDK.
func TestStructFields(t *testing.T) {
	want := []struct {
		v      any
		fields string
	}{
		{fluxiondb.InsertMessageRequest{}, `TS int64 json:"ts"; Doc string json:"doc"; Data string json:"data"; Col string json:"col"`},
		{fluxiondb.ManageAPIKeyParams{}, `Action string json:"action"; Key string json:"key"; Scope fluxiondb.ApiKeyScope json:"scope,omitempty"`},
		{fluxiondb.APIKeyInfo{}, `Key string json:"key"; Scope string json:"scope"; Deletable bool json:"deletable"`},
		{fluxiondb.ManageAPIKeyResponse{}, `ID string json:"id"; Status string json:"status,omitempty"; Error string json:"error,omitempty"; Scope string json:"scope,omitempty"; Keys []fluxiondb.APIKeyInfo json:"keys,omitempty"`},
		{fluxiondb.InsertMessageResponse{}, `ID string json:"id"`},
		{fluxiondb.QueryResponse{}, `ID string json:"id"; Records map[string]fluxiondb.RecordResponse json:"records"`},
		{fluxiondb.RecordResponse{}, `TS int64 json:"ts"; Data string json:"data"`},
		{fluxiondb.QueryCollectionResponse{}, `ID string json:"id"; Records []fluxiondb.RecordResponse json:"records"`},
		{fluxiondb.CollectionsResponse{}, `ID string json:"id"; Collections []string json:"collections"`},
		{fluxiondb.ConnectionInfo{}, `IP string json:"ip"; Since int64 json:"since"; Self bool json:"self"; Name *string json:"name"`},
		{fluxiondb.ConnectionsResponse{}, `ID string json:"id"; Connections []fluxiondb.ConnectionInfo json:"connections"`},
		{fluxiondb.KeyValueResponse{}, `ID string json:"id"; Value string json:"value"`},
		{fluxiondb.KeyValueAllKeysResponse{}, `ID string json:"id"; Keys []string json:"keys"`},
		{fluxiondb.KeyValueAllValuesResponse{}, `ID string json:"id"; Values map[string]string json:"values"`},
		{fluxiondb.CollectionParam{}, `Col string json:"col"`},
		{fluxiondb.FetchLatestRecordsParams{}, `Col string json:"col"; TS int64 json:"ts"; Doc string json:"doc,omitempty"; From *int64 json:"from,omitempty"; Where string json:"where,omitempty"; Filter string json:"filter,omitempty"`},
		{fluxiondb.DeleteCollectionParams{}, `Col string json:"col"`},
		{fluxiondb.FetchRecordsParams{}, `Col string json:"col"; Doc string json:"doc"; From int64 json:"from"; To int64 json:"to"; Limit *int json:"limit,omitempty"; Reverse *bool json:"reverse,omitempty"; Where string json:"where,omitempty"; Filter string json:"filter,omitempty"`},
		{fluxiondb.DeleteDocumentParams{}, `Doc string json:"doc"; Col string json:"col"`},
		{fluxiondb.DeleteRecord{}, `Doc string json:"doc"; Col string json:"col"; TS int64 json:"ts"`},
		{fluxiondb.DeleteRecordsRange{}, `Doc string json:"doc"; Col string json:"col"; FromTS int64 json:"fromTs"; ToTS int64 json:"toTs"`},
		{fluxiondb.SetValueParams{}, `Col string json:"col"; Key string json:"key"; Value string json:"value"`},
		{fluxiondb.GetValueParams{}, `Col string json:"col"; Key string json:"key"`},
		{fluxiondb.GetValuesParams{}, `Col string json:"col"; Key *string json:"key,omitempty"`},
		{fluxiondb.DeleteValueParams{}, `Col string json:"col"; Key string json:"key"`},
		{fluxiondb.WebSocketResponse{}, `ID string json:"id"`},
		{fluxiondb.WebSocketMessage{}, `ID string json:"id"; Type string json:"type"; Data string json:"data"`},
	}
	for _, w := range want {
		typ, fields := reflect.TypeOf(w.v), w.fields
		var got []string
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			got = append(got, f.Name+" "+f.Type.String()+" "+string(f.Tag))
		}
		if strings.Join(got, "; ") != fields {
			t.Errorf("%s fields:\n got %s\nwant %s", typ.Name(), strings.Join(got, "; "), fields)
		}
	}
	if reflect.TypeOf(fluxiondb.Client{}).NumField() == 0 {
		t.Error("Client should be an opaque struct")
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(fluxiondb.Client{})) {
		if f.IsExported() {
			t.Errorf("Client has exported field %s", f.Name)
		}
	}
}

func TestScopeConstants(t *testing.T) {
	if fluxiondb.ApiKeyScopeReadOnly != "readonly" || fluxiondb.ApiKeyScopeReadWrite != "read_write" ||
		fluxiondb.ApiKeyScopeReadWriteDelete != "read_write_delete" {
		t.Fatal("scope constants changed")
	}
	var s fluxiondb.ApiKeyScope = "x"
	_ = string(s) // ApiKeyScope is a string type
}
