package fluxiondb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// dialSession opens one connection to url and waits for the server's
// "ready" frame. The returned session's reader is not started yet.
func dialSession(ctx context.Context, url string, opts Options) (*session, error) {
	// gorilla honours a context's deadline during the upgrade but not its
	// cancellation, so the raw connection is closed when ctx ends.
	var (
		mu  sync.Mutex
		raw *activityConn
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.Close()
		}
	})
	defer stop()
	dialer := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: opts.HandshakeTimeout,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			raw = newActivityConn(conn)
			mu.Unlock()
			return raw, nil
		},
	}
	ws, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, &AuthError{HTTPStatus: resp.StatusCode, Reason: strings.TrimSpace(string(body))}
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("failed to connect: %w", err)
	}
	if err := awaitReady(ctx, ws, opts.ReadyTimeout); err != nil {
		ws.Close()
		return nil, err
	}
	mu.Lock()
	conn := raw
	mu.Unlock()
	if conn == nil { // a custom dialer bypassed NetDialContext: cannot happen with this Dialer
		ws.Close()
		return nil, fmt.Errorf("failed to connect: no connection")
	}
	return newSession(ws, conn), nil
}

// awaitReady reads the first frame, which must be {"type":"ready",...}.
// The caller closes the connection if ctx ends meanwhile.
func awaitReady(ctx context.Context, ws *websocket.Conn, timeout time.Duration) error {
	ws.SetReadDeadline(time.Now().Add(timeout))
	kind, msg, err := ws.ReadMessage()
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code == websocket.ClosePolicyViolation {
				return &AuthError{Code: ce.Code, Reason: ce.Text}
			}
			return &RefusedError{Code: ce.Code, Reason: ce.Text}
		}
		return fmt.Errorf("authentication failed: no ready frame: %w", err)
	}
	var first struct {
		Type string `json:"type"`
	}
	if kind != websocket.TextMessage || json.Unmarshal(msg, &first) != nil || first.Type != "ready" {
		return fmt.Errorf("authentication failed: expected a ready frame, got %.200q", msg)
	}
	return ws.SetReadDeadline(time.Time{})
}
