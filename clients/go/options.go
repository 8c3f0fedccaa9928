package fluxiondb

import (
	"log"
	"time"
)

// Default settings of a client created by NewClient or NewClientWithName.
const (
	// DefaultRequestTimeout bounds the wait for an answer (as in the
	// official SDK).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultHandshakeTimeout bounds the TCP connection and WebSocket upgrade.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultReadyTimeout bounds the wait for the "ready" frame (as in the
	// official SDK).
	DefaultReadyTimeout = 5 * time.Second
	// DefaultReconnectAttempts is the number of background reconnect
	// attempts after a connection drops.
	DefaultReconnectAttempts = 8
	// DefaultReconnectMinDelay is the wait before the first background
	// reconnect attempt.
	DefaultReconnectMinDelay = 200 * time.Millisecond
	// DefaultReconnectMaxDelay caps the wait between background reconnect
	// attempts.
	DefaultReconnectMaxDelay = 5 * time.Second
	// DefaultKeepAliveInterval is how long a connection may stay silent (nothing
	// received from the server) before the client pings the server.
	DefaultKeepAliveInterval = 15 * time.Second
	// DefaultKeepAliveTimeout is how long after such a ping the client waits for
	// anything from the server before it treats the connection as lost.
	DefaultKeepAliveTimeout = 10 * time.Second
)

// Options tunes a client created with NewClientWithOptions. The zero value
// of every field selects the default; see each field.
//
// The official SDK has no options; NewClient and NewClientWithName use the
// defaults.
type Options struct {
	// ConnectionName is the label sent as the "name" query parameter and
	// shown by GetConnections. Empty means none.
	ConnectionName string

	// RequestTimeout bounds how long a request waits for its answer.
	// 0 selects DefaultRequestTimeout (30 s); a negative value disables the
	// timeout (only the context given to a ...Context method bounds the wait).
	RequestTimeout time.Duration

	// HandshakeTimeout bounds the TCP connection plus WebSocket upgrade of
	// one connection attempt. 0 selects DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration

	// ReadyTimeout bounds the wait for the server's "ready" frame after the
	// upgrade. 0 selects DefaultReadyTimeout (5 s).
	ReadyTimeout time.Duration

	// ReconnectAttempts is how many times the client tries, in the
	// background, to restore a connection that dropped. 0 selects
	// DefaultReconnectAttempts (8); a negative value disables background
	// reconnection. Whatever this setting, the next method call reconnects
	// by itself when there is no connection.
	ReconnectAttempts int

	// ReconnectMinDelay is the wait before the first background attempt; it
	// doubles after each failed attempt, up to ReconnectMaxDelay.
	// 0 selects DefaultReconnectMinDelay (200 ms).
	ReconnectMinDelay time.Duration

	// ReconnectMaxDelay caps the wait between background attempts.
	// 0 selects DefaultReconnectMaxDelay (5 s).
	ReconnectMaxDelay time.Duration

	// KeepAliveInterval: after this long without anything received from the
	// server, the client sends it a WebSocket ping. 0 selects
	// DefaultKeepAliveInterval (15 s); a negative value disables the liveness
	// watchdog (a half-open connection then goes unnoticed: requests wait
	// for their timeout and subscriptions for ever).
	KeepAliveInterval time.Duration

	// KeepAliveTimeout: when nothing at all arrives within this long after
	// such a ping, the connection is treated as lost: it is closed, requests
	// waiting on it fail with ErrConnectionLost (and ErrKeepAliveTimeout),
	// and the client reconnects in the background, resuming subscriptions.
	// 0 selects DefaultKeepAliveTimeout (10 s).
	KeepAliveTimeout time.Duration

	// Logger receives connection events (connected, dropped, reconnecting).
	// nil means no logging. The API key is never logged.
	Logger *log.Logger
}

// withDefaults returns o with every zero field replaced by its default.
func (o Options) withDefaults() Options {
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.ReconnectAttempts == 0 {
		o.ReconnectAttempts = DefaultReconnectAttempts
	}
	if o.ReconnectMinDelay <= 0 {
		o.ReconnectMinDelay = DefaultReconnectMinDelay
	}
	if o.ReconnectMaxDelay <= 0 {
		o.ReconnectMaxDelay = DefaultReconnectMaxDelay
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if o.KeepAliveTimeout <= 0 {
		o.KeepAliveTimeout = DefaultKeepAliveTimeout
	}
	if o.ReconnectMaxDelay < o.ReconnectMinDelay {
		o.ReconnectMaxDelay = o.ReconnectMinDelay
	}
	return o
}

// backoffDelay returns the wait before background attempt n (1-based):
// min * 2^(n-1), capped at max.
func backoffDelay(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}
