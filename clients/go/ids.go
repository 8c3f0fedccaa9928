package fluxiondb

import (
	"crypto/rand"
	"fmt"
)

// idLength is the number of characters of a request id: 20 characters of
// [a-z0-9] carry about 103 random bits, so ids never collide in practice.
const idLength = 20

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newRequestID returns a random request id drawn from crypto/rand.
func newRequestID() string {
	out := make([]byte, 0, idLength)
	buf := make([]byte, 2*idLength)
	for len(out) < idLength {
		if _, err := rand.Read(buf); err != nil {
			// crypto/rand does not fail on supported platforms.
			panic(fmt.Sprintf("fluxiondb: crypto/rand failed: %v", err))
		}
		for _, b := range buf {
			// Reject the top values so that every character is equally likely
			// (252 = 7 * 36).
			if b >= 252 {
				continue
			}
			out = append(out, idAlphabet[int(b)%len(idAlphabet)])
			if len(out) == idLength {
				break
			}
		}
	}
	return string(out)
}
