package fluxiondb

import "context"

// SetValue sets a key/value entry, creating the collection if needed. The
// value must not be empty.
func (c *Client) SetValue(params SetValueParams) error {
	return c.SetValueContext(context.Background(), params)
}

// SetValueContext is SetValue bounded by ctx.
func (c *Client) SetValueContext(ctx context.Context, params SetValueParams) error {
	return c.do(ctx, "sval", params, nil)
}

// GetValue returns the value of one key, or "" when the key (or the
// collection) does not exist.
func (c *Client) GetValue(params GetValueParams) (string, error) {
	return c.GetValueContext(context.Background(), params)
}

// GetValueContext is GetValue bounded by ctx.
func (c *Client) GetValueContext(ctx context.Context, params GetValueParams) (string, error) {
	var resp KeyValueResponse
	if err := c.do(ctx, "gval", params, &resp); err != nil {
		return "", err
	}
	return resp.Value, nil
}

// GetKeys returns the keys of a collection's key/value entries.
func (c *Client) GetKeys(params CollectionParam) ([]string, error) {
	return c.GetKeysContext(context.Background(), params)
}

// GetKeysContext is GetKeys bounded by ctx.
func (c *Client) GetKeysContext(ctx context.Context, params CollectionParam) ([]string, error) {
	var resp KeyValueAllKeysResponse
	if err := c.do(ctx, "gkeys", params, &resp); err != nil {
		return nil, err
	}
	return resp.Keys, nil
}

// GetValues returns key/value entries of a collection: every entry when
// params.Key is nil or empty; otherwise the entries whose key matches the
// "/pattern/flags" in *params.Key, or the one entry named *params.Key (with
// "" as its value when it does not exist).
func (c *Client) GetValues(params GetValuesParams) (map[string]string, error) {
	return c.GetValuesContext(context.Background(), params)
}

// GetValuesContext is GetValues bounded by ctx.
func (c *Client) GetValuesContext(ctx context.Context, params GetValuesParams) (map[string]string, error) {
	typ := "gvals"
	if params.Key != nil && *params.Key != "" {
		typ = "gvalues"
	}
	var resp KeyValueAllValuesResponse
	if err := c.do(ctx, typ, params, &resp); err != nil {
		return nil, err
	}
	return resp.Values, nil
}

// DeleteValue deletes a key/value entry. Deleting a missing key is not an
// error.
func (c *Client) DeleteValue(params DeleteValueParams) error {
	return c.DeleteValueContext(context.Background(), params)
}

// DeleteValueContext is DeleteValue bounded by ctx.
func (c *Client) DeleteValueContext(ctx context.Context, params DeleteValueParams) error {
	return c.do(ctx, "rval", params, nil)
}
