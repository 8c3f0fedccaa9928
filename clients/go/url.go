package fluxiondb

import (
	"fmt"
	"net/url"
)

// buildURL returns wsURL with the api-key query parameter (and name, when
// non-empty) set, replacing values already present in the URL. Other query
// parameters are kept. The query is re-encoded with form encoding, which the
// server decodes (a space becomes "+").
func buildURL(wsURL, apiKey, name string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("fluxiondb: invalid URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("fluxiondb: invalid URL: scheme must be ws or wss, got %q", u.Scheme)
	}
	q := u.Query()
	q.Set("api-key", apiKey)
	if name != "" {
		q.Set("name", name)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
