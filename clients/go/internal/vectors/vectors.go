// Package vectors loads the protocol test vectors of the repository's
// tests/vectors/protocol.json (see tests/vectors/README.md) and matches
// server frames against their expectations. The replay itself is in
// replay_test.go.
package vectors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// File is the top level of protocol.json.
type File struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	MasterKey string `json:"master_key"`
	Cases     []Case `json:"cases"`
}

// Case is one replayable vector.
type Case struct {
	Name            string                `json:"name"`
	Vector          string                `json:"vector"`
	Title           string                `json:"title"`
	FreshServer     bool                  `json:"fresh_server"`
	ReferenceUnsafe bool                  `json:"reference_unsafe"`
	Connections     map[string]Connection `json:"connections"`
	Steps           []Step                `json:"steps"`
	Cleanup         []string              `json:"cleanup"`
}

// Connection says how to open one named connection.
type Connection struct {
	Path  string  `json:"path"`
	Query *string `json:"query"` // nil: no "?" at all
}

// Step is one action of a case; exactly one of Open, Conn (with Send,
// SendFrame and/or Expect) or Close is set.
type Step struct {
	Open      string    `json:"open"`
	Conn      string    `json:"conn"`
	Send      *string   `json:"send"`
	SendFrame *RawFrame `json:"send_frame"`
	Expect    any       `json:"expect"` // nil when absent
	Close     string    `json:"close"`
	Shared    string    `json:"shared"`
	Note      string    `json:"note"`
	HasExpect bool      `json:"-"`
}

// UnmarshalJSON decodes a step, keeping numbers exact and noting whether an
// "expect" member is present (an expected JSON null is distinct from none).
func (s *Step) UnmarshalJSON(data []byte) error {
	type plain Step
	var p plain
	if err := decodeExact(data, &p); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return err
	}
	*s = Step(p)
	_, s.HasExpect = keys["expect"]
	return nil
}

// RawFrame is a frame that cannot be written as a plain "send" text.
type RawFrame struct {
	Opcode string `json:"opcode"` // "binary" or "text"
	Hex    string `json:"hex"`
	Fill   string `json:"fill"`
	Length int    `json:"length"`
}

// Path returns the location of protocol.json: $FLUXIONDB_VECTORS if set,
// else tests/vectors/protocol.json of this repository.
func Path() string {
	if p := os.Getenv("FLUXIONDB_VECTORS"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	// file = <repo>/clients/go/internal/vectors/vectors.go
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	return filepath.Join(repo, "tests", "vectors", "protocol.json")
}

// Load reads and decodes protocol.json.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the protocol vectors: %w (FLUXIONDB_VECTORS overrides the path)", err)
	}
	var f File
	if err := decodeExact(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Format != "fluxiondb-protocol-vectors" || f.Version != 1 {
		return nil, fmt.Errorf("%s: unexpected format %q version %d", path, f.Format, f.Version)
	}
	return &f, nil
}

// decodeExact decodes JSON keeping numbers as json.Number, so that integers
// beyond 2^53 and the difference between 1 and 1.0 survive.
func decodeExact(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
