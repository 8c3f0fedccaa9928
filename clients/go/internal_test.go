package fluxiondb

import (
	"net/url"
	"testing"
	"time"
)

func TestRequestIDs(t *testing.T) {
	seen := make(map[string]bool)
	counts := make(map[rune]int)
	for i := 0; i < 2000; i++ {
		id := newRequestID()
		if len(id) != idLength || len(id) < 16 {
			t.Fatalf("id %q has length %d", id, len(id))
		}
		for _, r := range id {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				t.Fatalf("id %q has character %q", id, r)
			}
			counts[r]++
		}
		if seen[id] {
			t.Fatalf("repeated id %q", id)
		}
		seen[id] = true
	}
	if len(counts) != len(idAlphabet) {
		t.Fatalf("only %d distinct characters used", len(counts))
	}
}

func TestBuildURL(t *testing.T) {
	cases := []struct {
		in, key, name string
		want          url.Values
		scheme, path  string
	}{
		{"ws://h:1", "k", "", url.Values{"api-key": {"k"}}, "ws", ""},
		{"ws://h:1/x?api-key=old&name=old&a=b", "k+ y", "n m", url.Values{"api-key": {"k+ y"}, "name": {"n m"}, "a": {"b"}}, "ws", "/x"},
		{"http://h:1/", "k", "n", url.Values{"api-key": {"k"}, "name": {"n"}}, "ws", "/"},
		{"https://h/", "k", "", url.Values{"api-key": {"k"}}, "wss", "/"},
	}
	for _, tc := range cases {
		got, err := buildURL(tc.in, tc.key, tc.name)
		if err != nil {
			t.Fatalf("buildURL(%q): %v", tc.in, err)
		}
		u, _ := url.Parse(got)
		if u.Scheme != tc.scheme || u.Path != tc.path || u.Query().Encode() != tc.want.Encode() {
			t.Fatalf("buildURL(%q) = %q", tc.in, got)
		}
	}
	if _, err := buildURL("ftp://h", "k", ""); err == nil {
		t.Fatal("ftp URL accepted")
	}
	if _, err := buildURL("ws://h:bad port", "k", ""); err == nil {
		t.Fatal("malformed URL accepted")
	}
}

func TestBackoff(t *testing.T) {
	min, max := 200*time.Millisecond, 5*time.Second
	want := []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		if got := backoffDelay(i+1, min, max); got != w*time.Millisecond {
			t.Fatalf("attempt %d: %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := backoffDelay(1000, min, max); got != max {
		t.Fatalf("attempt 1000: %v", got)
	}
}

func TestOptionDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.RequestTimeout != 30*time.Second || o.ReadyTimeout != 5*time.Second || o.ReconnectAttempts != DefaultReconnectAttempts {
		t.Fatalf("defaults = %+v", o)
	}
	o = Options{RequestTimeout: -1, ReconnectAttempts: -1, ReconnectMinDelay: time.Second, ReconnectMaxDelay: time.Millisecond}.withDefaults()
	if o.RequestTimeout != -1 || o.ReconnectAttempts != -1 || o.ReconnectMaxDelay != time.Second {
		t.Fatalf("explicit = %+v", o)
	}
}
