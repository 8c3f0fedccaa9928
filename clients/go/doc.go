// Package fluxiondb is a Go client for FluxionDB, an in-memory time-series
// database served over WebSockets.
//
// It is a drop-in replacement for the official SDK
// (github.com/volandoo/fluxiondb/clients/go): the same package name, the
// same constructor, methods, signatures and types, so existing code compiles
// once its import path is changed to
// github.com/fluxiondb/fluxiondb/clients/go.
//
// Differences from the official SDK, all on failure paths:
//
//   - A Client is safe for concurrent use by many goroutines.
//   - An error answer from the server is returned as a non-nil *ServerError
//     by every method. AddAPIKey and RemoveAPIKey return the response (with
//     its Error member set) and the error.
//   - A refused API key fails at once with an *AuthError carrying the
//     server's close reason; it is never retried. Any other refusal before
//     "ready" (close 1013 "connection limit reached", "recovering") is a
//     *RefusedError, and is retried like a failure to connect.
//   - When the connection drops, every request waiting on it returns at once
//     with an error wrapping ErrConnectionLost, and the client reconnects in
//     the background with bounded exponential back-off.
//   - Every method has a ...Context variant (FetchCollectionsContext, ...)
//     that takes a context.Context.
//   - Request ids are 20 random characters from crypto/rand.
//   - Nothing is logged unless Options.Logger is set; the API key is never
//     logged.
//
// Close is terminal, as in the official SDK: a closed client returns
// ErrClosed from every method.
package fluxiondb
