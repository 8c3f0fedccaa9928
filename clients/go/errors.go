package fluxiondb

import (
	"context"
	"errors"
	"fmt"
)

// ServerError is returned when the server answered a request with an error,
// for example "permission denied" or
// "invalid payload: [0].ts must be a positive integer".
//
// Its Error method returns the server's text unchanged.
type ServerError struct {
	// ID is the id of the refused request.
	ID string
	// Type is the message type of the refused request ("ins", "keys", ...).
	Type string
	// Message is the server's error text.
	Message string
}

// Error returns the server's error text unchanged.
func (e *ServerError) Error() string { return e.Message }

// AuthError is returned when the server refused the connection's API key:
// it closed the connection with code 1008 before sending "ready", with the
// reason "Unknown API key" or "Missing API key parameter". (A server that
// refuses the upgrade with HTTP 401 instead, as some upstream versions do,
// gives an AuthError with HTTPStatus 401 and Code 0.) A client never retries
// a refused key: the call fails at once.
type AuthError struct {
	// Code is the WebSocket close code (1008), or 0 for an HTTP refusal.
	Code int
	// HTTPStatus is the HTTP status of a refused upgrade, or 0.
	HTTPStatus int
	// Reason is the close reason (or HTTP body) sent by the server.
	Reason string
}

// Error returns "authentication failed: <reason> (close <code>)".
func (e *AuthError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = "no reason"
	}
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("authentication failed: %s (HTTP %d)", reason, e.HTTPStatus)
	}
	return fmt.Sprintf("authentication failed: %s (close %d)", reason, e.Code)
}

// RefusedError is returned when the server closed a new connection before
// "ready" for another reason than the API key (close codes other than 1008).
// The FluxionDB server does so with 1013 (try again later) when it is at its
// connection limit ("connection limit reached"), still loading its data
// folder ("recovering"), or holding back refused keys from this address
// ("too many refused connections waiting from this address"). It is not a
// key problem: the client retries it, in the background with back-off after
// a drop, and the next call connects by itself.
type RefusedError struct {
	// Code is the WebSocket close code (1013 for the refusals above).
	Code int
	// Reason is the close reason sent by the server.
	Reason string
}

// Error returns "fluxiondb: server refused the connection: <reason> (close
// <code>)", with ", try again later" after a 1013.
func (e *RefusedError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = "no reason"
	}
	later := ""
	if e.Code == closeTryAgainLater {
		later = ", try again later"
	}
	return fmt.Sprintf("fluxiondb: server refused the connection: %s (close %d%s)", reason, e.Code, later)
}

// closeTryAgainLater is the WebSocket close code 1013.
const closeTryAgainLater = 1013

// ErrClosed is returned by every method of a client on which Close was
// called. It also matches context.Canceled with errors.Is, which is what the
// official SDK returned in that situation.
var ErrClosed error = closedError{}

type closedError struct{}

// Error describes the closed client.
func (closedError) Error() string { return "fluxiondb: client is closed" }

// Is makes ErrClosed match context.Canceled.
func (closedError) Is(target error) bool { return target == context.Canceled }

// ErrConnectionLost is returned (wrapped, with the cause) by a request whose
// connection dropped before its answer arrived. The request may or may not
// have been carried out by the server.
var ErrConnectionLost = errors.New("fluxiondb: connection lost before the response arrived")

// ErrKeepAliveTimeout is the cause of a connection the liveness watchdog gave
// up (see Options.KeepAliveInterval): nothing arrived from the server within
// KeepAliveTimeout of a ping. Requests that were waiting on it fail with an
// error matching both ErrConnectionLost and ErrKeepAliveTimeout.
var ErrKeepAliveTimeout = errors.New("fluxiondb: keep-alive timed out: nothing received from the server after a ping")

// ErrRequestTimeout is returned when no answer arrived within the client's
// request timeout (30 s by default). The request may still be carried out by
// the server. It also matches context.DeadlineExceeded with errors.Is.
var ErrRequestTimeout error = timeoutError{}

type timeoutError struct{}

// Error describes the timeout.
func (timeoutError) Error() string { return "fluxiondb: request timeout" }

// Is makes ErrRequestTimeout match context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout reports true, as net.Error timeouts do.
func (timeoutError) Timeout() bool { return true }

// connLostError wraps ErrConnectionLost with the reason of the drop.
type connLostError struct{ cause error }

// Error names the lost connection and its cause.
func (e *connLostError) Error() string {
	if e.cause == nil {
		return ErrConnectionLost.Error()
	}
	return ErrConnectionLost.Error() + ": " + e.cause.Error()
}

// Unwrap gives ErrConnectionLost and the cause.
func (e *connLostError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrConnectionLost}
	}
	return []error{ErrConnectionLost, e.cause}
}
