package fluxiondb

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
