package fluxiondb

import "context"

// GetConnections lists the server's open connections, the caller's included
// (Self is true on its entry).
func (c *Client) GetConnections() ([]ConnectionInfo, error) {
	return c.GetConnectionsContext(context.Background())
}

// GetConnectionsContext is GetConnections bounded by ctx.
func (c *Client) GetConnectionsContext(ctx context.Context) ([]ConnectionInfo, error) {
	var resp ConnectionsResponse
	if err := c.do(ctx, "conn", emptyPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Connections, nil
}

// AddAPIKey creates the scoped API key key, or changes its scope when it
// exists. Only the master key may manage API keys.
//
// The whole response is returned. When the server refuses the request, the
// response has its Error member set AND the returned error is a
// *ServerError with the same text (the official SDK returned a nil error).
func (c *Client) AddAPIKey(key string, scope ApiKeyScope) (ManageAPIKeyResponse, error) {
	return c.AddAPIKeyContext(context.Background(), key, scope)
}

// AddAPIKeyContext is AddAPIKey bounded by ctx.
func (c *Client) AddAPIKeyContext(ctx context.Context, key string, scope ApiKeyScope) (ManageAPIKeyResponse, error) {
	return c.manageKeys(ctx, ManageAPIKeyParams{Action: "add", Key: key, Scope: scope})
}

// RemoveAPIKey deletes a scoped API key; the server closes the connections
// that use it. Only the master key may manage API keys; the master key
// itself cannot be removed.
//
// As with AddAPIKey, a refusal gives both the response with Error set and a
// non-nil *ServerError.
func (c *Client) RemoveAPIKey(key string) (ManageAPIKeyResponse, error) {
	return c.RemoveAPIKeyContext(context.Background(), key)
}

// RemoveAPIKeyContext is RemoveAPIKey bounded by ctx.
func (c *Client) RemoveAPIKeyContext(ctx context.Context, key string) (ManageAPIKeyResponse, error) {
	return c.manageKeys(ctx, ManageAPIKeyParams{Action: "remove", Key: key})
}

// ListAPIKeys returns every API key, the master key included (with
// Deletable false). The result is never nil. Only the master key may list
// keys.
func (c *Client) ListAPIKeys() ([]APIKeyInfo, error) {
	return c.ListAPIKeysContext(context.Background())
}

// ListAPIKeysContext is ListAPIKeys bounded by ctx.
func (c *Client) ListAPIKeysContext(ctx context.Context) ([]APIKeyInfo, error) {
	resp, err := c.manageKeys(ctx, ManageAPIKeyParams{Action: "list", Key: ""})
	if err != nil {
		return nil, err
	}
	if resp.Keys == nil {
		return []APIKeyInfo{}, nil
	}
	return resp.Keys, nil
}

func (c *Client) manageKeys(ctx context.Context, params ManageAPIKeyParams) (ManageAPIKeyResponse, error) {
	var resp ManageAPIKeyResponse
	err := c.do(ctx, "keys", params, &resp)
	return resp, err
}
