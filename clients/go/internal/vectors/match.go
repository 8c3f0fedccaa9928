package vectors

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// Frame is what was read from a connection: a text frame, a close frame,
// or a failure (a dropped connection, a timeout).
type Frame struct {
	Text   []byte // a text frame
	Binary bool   // the frame was binary
	Closed bool   // a close frame arrived
	Code   int    // its close code
	Reason string // its close reason
	Err    error  // reading failed without a close frame
}

// String describes the frame for failure messages.
func (f Frame) String() string {
	switch {
	case f.Closed:
		return fmt.Sprintf("close %d %q", f.Code, f.Reason)
	case f.Err != nil:
		return "no frame: " + f.Err.Error()
	case f.Binary:
		return fmt.Sprintf("binary frame %q", f.Text)
	default:
		return fmt.Sprintf("text frame %s", f.Text)
	}
}

// Match checks a frame against an "expect" value of the vectors file. It
// returns "" on success, otherwise a description of the first difference
// with its JSON path.
func Match(expect any, got Frame) string {
	if obj, ok := expect.(map[string]any); ok {
		if spec, ok := obj["$close"]; ok && len(obj) == 1 {
			return matchClose(spec, got)
		}
	}
	if !got.Closed && got.Err == nil && !got.Binary {
		actual, err := parseExact(got.Text)
		if err != nil {
			return fmt.Sprintf("frame is not JSON (%v): %s", err, got.Text)
		}
		return matchValue(expect, actual, "$")
	}
	return fmt.Sprintf("expected a text frame, got %s", got)
}

func matchClose(spec any, got Frame) string {
	want, _ := spec.(map[string]any)
	if !got.Closed {
		return fmt.Sprintf("expected close %v, got %s", spec, got)
	}
	if code, ok := want["code"]; ok && fmt.Sprint(code) != fmt.Sprint(got.Code) {
		return fmt.Sprintf("expected close code %v, got close %d %q", code, got.Code, got.Reason)
	}
	if reason, ok := want["reason"]; ok && reason != got.Reason {
		return fmt.Sprintf("expected close reason %q, got close %d %q", reason, got.Code, got.Reason)
	}
	return ""
}

// parseExact parses a frame keeping numbers as json.Number.
func parseExact(text []byte) (any, error) {
	var v any
	if err := decodeExact(text, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// matchValue compares expected against actual (both decoded with
// json.Number), honouring the $any and $contains placeholders. Arrays are
// compared in order; objects must have the same member set.
func matchValue(expected, actual any, path string) string {
	switch exp := expected.(type) {
	case map[string]any:
		if kind, ok := exp["$any"]; ok {
			return matchAny(exp, kind, actual, path)
		}
		if patterns, ok := exp["$contains"]; ok && len(exp) == 1 {
			return matchContains(patterns, actual, path)
		}
		act, ok := actual.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: expected an object, got %s", path, show(actual))
		}
		for _, k := range sortedKeys(exp) {
			av, present := act[k]
			if !present {
				return fmt.Sprintf("%s: missing member %q", path, k)
			}
			if d := matchValue(exp[k], av, path+"."+k); d != "" {
				return d
			}
		}
		for _, k := range sortedKeys(act) {
			if _, present := exp[k]; !present {
				return fmt.Sprintf("%s: unexpected member %q = %s", path, k, show(act[k]))
			}
		}
		return ""
	case []any:
		act, ok := actual.([]any)
		if !ok {
			return fmt.Sprintf("%s: expected an array, got %s", path, show(actual))
		}
		for i := 0; i < len(exp) && i < len(act); i++ {
			if d := matchValue(exp[i], act[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		if len(exp) != len(act) {
			return fmt.Sprintf("%s: expected %d elements, got %d: %s", path, len(exp), len(act), show(actual))
		}
		return ""
	case json.Number:
		act, ok := actual.(json.Number)
		if !ok || !numbersEqual(exp, act) {
			return fmt.Sprintf("%s: expected %s, got %s", path, exp, show(actual))
		}
		return ""
	default: // string, bool, nil
		if expected != actual {
			return fmt.Sprintf("%s: expected %s, got %s", path, show(expected), show(actual))
		}
		return ""
	}
}

// matchAny handles {"$any": kind, "$min": n, "$max": n}.
func matchAny(spec map[string]any, kind any, actual any, path string) string {
	ok := false
	switch kind {
	case "any":
		ok = true
	case "integer":
		n, isNum := actual.(json.Number)
		ok = isNum && isInteger(n)
	case "number":
		_, ok = actual.(json.Number)
	case "string":
		_, ok = actual.(string)
	case "boolean":
		_, ok = actual.(bool)
	case "array":
		_, ok = actual.([]any)
	case "object":
		_, ok = actual.(map[string]any)
	case "null":
		ok = actual == nil
	default:
		return fmt.Sprintf("%s: unknown $any kind %v", path, kind)
	}
	if !ok {
		return fmt.Sprintf("%s: expected any %v, got %s", path, kind, show(actual))
	}
	n, isNum := actual.(json.Number)
	for _, bound := range []string{"$min", "$max"} {
		limit, has := spec[bound].(json.Number)
		if !has {
			continue
		}
		if !isNum {
			return fmt.Sprintf("%s: %s needs a number, got %s", path, bound, show(actual))
		}
		c := compareNumbers(n, limit)
		if bound == "$min" && c < 0 || bound == "$max" && c > 0 {
			return fmt.Sprintf("%s: %s is outside %s %s", path, n, bound, limit)
		}
	}
	return ""
}

// matchContains handles {"$contains": [p1, p2, ...]}: every pattern must
// match a different element of the actual array.
func matchContains(patterns any, actual any, path string) string {
	pats, _ := patterns.([]any)
	act, ok := actual.([]any)
	if !ok {
		return fmt.Sprintf("%s: expected an array, got %s", path, show(actual))
	}
	used := make([]bool, len(act))
	var assign func(i int) bool
	assign = func(i int) bool {
		if i == len(pats) {
			return true
		}
		for j := range act {
			if !used[j] && matchValue(pats[i], act[j], path) == "" {
				used[j] = true
				if assign(i + 1) {
					return true
				}
				used[j] = false
			}
		}
		return false
	}
	if !assign(0) {
		return fmt.Sprintf("%s: %s does not contain distinct matches for %s", path, show(actual), show(patterns))
	}
	return ""
}

// isInteger reports whether a JSON number literal is written as an integer
// (1 is an integer, 1.0 and 1e3 are not: the vectors are type-strict).
func isInteger(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}

func numbersEqual(a, b json.Number) bool {
	if isInteger(a) != isInteger(b) {
		return false
	}
	return compareNumbers(a, b) == 0
}

// compareNumbers compares two JSON numbers exactly.
func compareNumbers(a, b json.Number) int {
	x, okx := new(big.Float).SetPrec(200).SetString(string(a))
	y, oky := new(big.Float).SetPrec(200).SetString(string(b))
	if !okx || !oky {
		return strings.Compare(string(a), string(b))
	}
	return x.Cmp(y)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// show renders a decoded value as compact JSON for messages.
func show(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(out) > 300 {
		return string(out[:300]) + "…"
	}
	return string(out)
}
