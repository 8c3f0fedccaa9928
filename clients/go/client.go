package fluxiondb

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Client is a FluxionDB client. It is safe for concurrent use by many
// goroutines: they share one WebSocket connection, on which requests are
// multiplexed.
//
// A client connects lazily (on the first call) or when Connect is called.
// When the connection drops, every request waiting on it returns an error
// wrapping ErrConnectionLost, and the client reconnects in the background
// with exponential back-off; a call made while there is no connection
// connects by itself. A refused API key is never retried.
//
// Close is terminal: a closed client cannot be used again (every call
// returns ErrClosed). Create a new client instead.
type Client struct {
	baseURL string
	apiKey  string
	opts    Options

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines (dials, readers, reconnect loop)

	mu           sync.Mutex
	name         string
	sess         *session  // the live session, or nil
	dial         *dialCall // the connection attempt in progress, or nil
	reconnecting bool      // a background reconnect loop is running
	closed       bool

	subs *subscriptions // live subscriptions, resumed on every new connection
}

// dialCall is one connection attempt, shared by every caller that needs a
// connection while it runs.
type dialCall struct {
	done chan struct{}
	err  error
}

// NewClient returns a client for the server at wsURL (for example
// "ws://127.0.0.1:8080") that authenticates with apiKey. It does not
// connect.
func NewClient(wsURL, apiKey string) *Client {
	return NewClientWithOptions(wsURL, apiKey, Options{})
}

// NewClientWithName is NewClient with a connection label, sent as the
// "name" query parameter and shown by GetConnections.
func NewClientWithName(wsURL, apiKey, connectionName string) *Client {
	return NewClientWithOptions(wsURL, apiKey, Options{ConnectionName: connectionName})
}

// NewClientWithOptions is NewClient with explicit settings (timeouts,
// reconnect back-off, logging). It does not connect.
func NewClientWithOptions(wsURL, apiKey string, opts Options) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	opts = opts.withDefaults()
	c := &Client{
		baseURL: wsURL,
		apiKey:  apiKey,
		opts:    opts,
		name:    opts.ConnectionName,
		ctx:     ctx,
		cancel:  cancel,
	}
	c.subs = newSubscriptions(c)
	return c
}

// SetConnectionName sets the connection label. It takes effect at the next
// connection; an open connection keeps its label.
func (c *Client) SetConnectionName(name string) {
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
}

// Connect opens the connection and waits for the server's "ready" frame.
// It returns nil at once when the client is already connected. A refused API
// key gives an *AuthError, another refusal (close 1013 "connection limit
// reached", say) a *RefusedError.
func (c *Client) Connect() error {
	return c.ConnectContext(context.Background())
}

// ConnectContext is Connect bounded by ctx. When ctx ends first, the
// connection attempt goes on in the background for other callers.
func (c *Client) ConnectContext(ctx context.Context) error {
	_, err := c.session(ctx)
	return err
}

// Close closes the connection and stops reconnecting. Requests in flight
// return ErrClosed. Close is terminal: every later call on the client
// returns ErrClosed. Calling Close more than once is harmless.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()

	c.cancel()
	if s != nil {
		s.shutdown()
	}
	c.subs.closeAll()
	c.wg.Wait()
}

// session returns the live session, connecting (or joining a connection
// attempt in progress) when there is none.
func (c *Client) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.sess != nil && c.sess.isEnded() {
			c.sess = nil // its reader has not reported yet; do not reuse it
		}
		if c.sess != nil {
			s := c.sess
			c.mu.Unlock()
			return s, nil
		}
		call := c.startDialLocked()
		c.mu.Unlock()

		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		if call.err != nil {
			return nil, call.err
		}
		// Connected; loop to pick the session up (it may already have
		// dropped, in which case the next attempt starts).
	}
}

// startDialLocked starts a connection attempt unless one is running, and
// returns it. c.mu must be held.
func (c *Client) startDialLocked() *dialCall {
	if c.dial != nil {
		return c.dial
	}
	call := &dialCall{done: make(chan struct{})}
	c.dial = call
	name := c.name
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(call.done)
		call.err = c.connectOnce(name)
	}()
	return call
}

// connectOnce makes one connection attempt and installs the session.
func (c *Client) connectOnce(name string) error {
	url, err := buildURL(c.baseURL, c.apiKey, name)
	var s *session
	if err == nil {
		s, err = dialSession(c.ctx, url, c.opts)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.dial = nil
	if c.closed {
		if s != nil {
			s.ws.Close()
		}
		return ErrClosed
	}
	if err != nil {
		c.logf("fluxiondb: connection attempt failed: %v", err)
		return err
	}
	c.sess = s
	s.onPush = c.subs.route
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.readLoop(c.sessionEnded, c.logf)
	}()
	if c.opts.KeepAliveInterval > 0 {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			s.watch(c.opts.KeepAliveInterval, c.opts.KeepAliveTimeout, c.logf)
		}()
	}
	if c.subs.needResume(s) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.subs.resume(s)
		}()
	}
	c.logf("fluxiondb: connected to %s", c.baseURL)
	return nil
}

// sessionEnded is called by a session's reader when its connection is gone.
// It starts the background reconnect loop unless the client is closed, the
// key was refused, or background reconnection is disabled (the subscriptions
// then end: nothing would resume them).
func (c *Client) sessionEnded(s *session, cause error) {
	c.subs.dropped(s)
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.logf("fluxiondb: connection lost: %v", cause)
	if c.opts.ReconnectAttempts < 0 {
		c.mu.Unlock()
		c.subs.endAll("connection lost: " + cause.Error())
		return
	}
	if !c.reconnecting {
		c.reconnecting = true
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.reconnectLoop()
		}()
	}
	c.mu.Unlock()
}

// reconnectLoop tries to restore the connection, waiting
// ReconnectMinDelay, then twice as long after each failure (at most
// ReconnectMaxDelay), for at most ReconnectAttempts attempts. It stops early
// when a connection exists (made by a caller, say), when the key is refused,
// or when the client is closed. When it gives up, every subscription ends.
func (c *Client) reconnectLoop() {
	for n := 1; ; n++ {
		c.mu.Lock()
		if c.closed || c.sess != nil || n > c.opts.ReconnectAttempts {
			gaveUp := !c.closed && c.sess == nil
			c.reconnecting = false
			c.mu.Unlock()
			if gaveUp {
				c.subs.endAll(ReconnectExhausted)
			}
			return
		}
		c.mu.Unlock()

		delay := backoffDelay(n, c.opts.ReconnectMinDelay, c.opts.ReconnectMaxDelay)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-c.ctx.Done():
			timer.Stop()
			c.mu.Lock()
			c.reconnecting = false
			c.mu.Unlock()
			return
		}

		c.mu.Lock()
		var call *dialCall
		if !c.closed && c.sess == nil {
			c.logf("fluxiondb: reconnecting (attempt %d of %d)", n, c.opts.ReconnectAttempts)
			call = c.startDialLocked()
		}
		c.mu.Unlock()
		if call == nil {
			continue // the loop head stops
		}
		<-call.done
		var authErr *AuthError
		if errors.As(call.err, &authErr) {
			c.mu.Lock()
			c.reconnecting = false
			c.mu.Unlock()
			c.subs.endAll("connection lost: " + call.err.Error())
			return
		}
	}
}

// logf logs through the configured logger, if any.
func (c *Client) logf(format string, args ...any) {
	if c.opts.Logger != nil {
		c.opts.Logger.Printf(format, args...)
	}
}
