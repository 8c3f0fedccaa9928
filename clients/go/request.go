package fluxiondb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// maxSendAttempts bounds how often a request that never left the client
// (its connection had just dropped) is tried on a new connection.
const maxSendAttempts = 3

// emptyPayload is the data sent with requests whose payload the server
// ignores (cols, conn), as every official SDK does.
const emptyPayload = "{}"

// do sends a request of type typ with the given payload and decodes the
// answer into out (when out is not nil). payload is JSON-encoded, except a
// string, which is sent as the payload text itself.
//
// A server error answer is returned as a *ServerError; out is still decoded,
// so that callers that return the whole response (AddAPIKey, RemoveAPIKey)
// can include its Error member.
func (c *Client) do(ctx context.Context, typ string, payload any, out any) error {
	_, err := c.doOn(ctx, typ, payload, out)
	return err
}

// doOn is do that also returns the session the request was answered on
// (nil when it was not sent).
func (c *Client) doOn(ctx context.Context, typ string, payload any, out any) (*session, error) {
	return c.doWith(ctx, nil, typ, payload, out, nil)
}

// doWith is doOn with two more choices. With a session in on, the request is
// sent on that one only, never on a later connection (when it has ended, the
// error is a *notSentError). With late, an answer that arrives after ctx
// ended is handed to late with its session (see session.roundTrip).
func (c *Client) doWith(ctx context.Context, on *session, typ string, payload any, out any, late func(*session, []byte)) (*session, error) {
	data, ok := payload.(string)
	if !ok {
		raw, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("fluxiondb: cannot encode %s payload: %w", typ, err)
		}
		data = string(raw)
	}

	ctx, cancel := c.requestContext(ctx)
	defer cancel()

	id := newRequestID()
	frame, err := json.Marshal(WebSocketMessage{ID: id, Type: typ, Data: data})
	if err != nil {
		return nil, fmt.Errorf("fluxiondb: cannot encode request: %w", err)
	}
	var answer []byte
	only := on
	for attempt := 1; ; attempt++ {
		s := only
		if s == nil {
			if s, err = c.session(ctx); err != nil {
				return nil, err
			}
		}
		on = s
		var lateOn func([]byte)
		if late != nil {
			lateOn = func(msg []byte) { late(s, msg) }
		}
		answer, err = s.roundTrip(ctx, id, frame, lateOn)
		var notSent *notSentError
		if errors.As(err, &notSent) && only == nil {
			// The connection was already gone and the frame never left:
			// sending it on a new connection cannot duplicate it.
			if attempt < maxSendAttempts {
				continue
			}
			err = notSent.err
		}
		if err != nil {
			return nil, err
		}
		break
	}

	var head struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(answer, &head); err != nil {
		return on, fmt.Errorf("fluxiondb: invalid %s response: %w", typ, err)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return on, fmt.Errorf("fluxiondb: invalid %s response: %w", typ, err)
		}
	}
	if head.Error != nil {
		return on, &ServerError{ID: id, Type: typ, Message: *head.Error}
	}
	return on, nil
}

// requestContext bounds ctx by the client's request timeout, if any. When
// that timeout fires, context.Cause reports ErrRequestTimeout.
func (c *Client) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.opts.RequestTimeout < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, c.opts.RequestTimeout, ErrRequestTimeout)
}
