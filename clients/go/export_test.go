package fluxiondb

import (
	"time"

	"github.com/gorilla/websocket"
)

// Test-only access to the client's state, for the external tests.

// IsConnected reports whether c has a live connection.
func IsConnected(c *Client) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// PendingRequests is the number of requests waiting for an answer on c's
// connection.
func PendingRequests(c *Client) int {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// SendCloseFrame writes a close frame on c's connection, as the connection
// does when it answers the server's: later writes on it fail with
// websocket.ErrCloseSent.
func SendCloseFrame(c *Client) error {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	return s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
}

// SetMaxQueued lowers, for c's subscriptions, the number of events that may
// wait for a handler before the client ends the subscription with
// "subscriber too slow" (10,000).
func SetMaxQueued(c *Client, n int) {
	c.subs.mu.Lock()
	defer c.subs.mu.Unlock()
	c.subs.maxQueued = n
}

// SetBeforeRegister makes c's Subscribe call f once the server's answer is
// in, before the subscription is filed under its connection.
func SetBeforeRegister(c *Client, f func()) {
	c.subs.mu.Lock()
	defer c.subs.mu.Unlock()
	c.subs.beforeRegister = f
}
