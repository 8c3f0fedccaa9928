package vectors

import (
	"strings"
	"testing"
)

func expectOf(t *testing.T, text string) any {
	t.Helper()
	v, err := parseExact([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMatch(t *testing.T) {
	cases := []struct {
		expect, frame string
		want          string // "" = match, else a substring of the difference
	}{
		{`{"id":"a","n":1}`, `{"n":1,"id":"a"}`, ""},
		{`{"id":"a"}`, `{"id":"a","error":"x"}`, `unexpected member "error"`},
		{`{"id":"a","x":1}`, `{"id":"a"}`, `missing member "x"`},
		{`{"n":1}`, `{"n":1.0}`, "$.n: expected 1"},
		{`{"n":1}`, `{"n":true}`, "$.n"},
		{`{"n":9223372036854775807}`, `{"n":9223372036854775807}`, ""},
		{`{"n":9223372036854775807}`, `{"n":9223372036854775806}`, "$.n"},
		{`["a","b"]`, `["b","a"]`, "$[0]"},
		{`["a"]`, `["a","b"]`, "expected 1 elements"},
		{`{"s":{"$any":"integer","$min":0}}`, `{"s":5}`, ""},
		{`{"s":{"$any":"integer","$min":0}}`, `{"s":-1}`, "outside $min"},
		{`{"s":{"$any":"integer"}}`, `{"s":1.5}`, "expected any integer"},
		{`{"s":{"$any":"string"}}`, `{"s":"x"}`, ""},
		{`{"s":{"$any":"null"}}`, `{"s":null}`, ""},
		{`{"s":{"$any":"any"}}`, `{"s":[1]}`, ""},
		{`{"c":{"$contains":[{"k":1},{"k":{"$any":"integer"}}]}}`, `{"c":[{"k":2},{"k":9},{"k":1}]}`, ""},
		{`{"c":{"$contains":[{"k":1},{"k":1}]}}`, `{"c":[{"k":1},{"k":2}]}`, "distinct matches"},
		{`{"v":null}`, `{"v":null}`, ""},
		{`{"v":null}`, `{"v":"null"}`, "$.v"},
	}
	for _, tc := range cases {
		got := Match(expectOf(t, tc.expect), Frame{Text: []byte(tc.frame)})
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("Match(%s, %s) = %q, want %q", tc.expect, tc.frame, got, tc.want)
		}
	}
}

func TestMatchClose(t *testing.T) {
	exp := expectOf(t, `{"$close":{"code":1008,"reason":"Unknown API key"}}`)
	if d := Match(exp, Frame{Closed: true, Code: 1008, Reason: "Unknown API key"}); d != "" {
		t.Fatal(d)
	}
	if d := Match(exp, Frame{Closed: true, Code: 1008, Reason: "other"}); !strings.Contains(d, "reason") {
		t.Fatal(d)
	}
	if d := Match(exp, Frame{Text: []byte(`{"type":"ready"}`)}); !strings.Contains(d, "expected close") {
		t.Fatal(d)
	}
	codeOnly := expectOf(t, `{"$close":{"code":1007}}`)
	if d := Match(codeOnly, Frame{Closed: true, Code: 1007, Reason: "anything"}); d != "" {
		t.Fatal(d)
	}
	if d := Match(expectOf(t, `{"id":"x"}`), Frame{Closed: true, Code: 1000}); !strings.Contains(d, "expected a text frame") {
		t.Fatal(d)
	}
}
