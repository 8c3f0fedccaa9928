package fluxiondb

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// session is one authenticated WebSocket connection. Any number of
// goroutines may send requests on it at once: frames are written one at a
// time (writeSem), and a single reader goroutine routes each answer to the
// request with the same id.
type session struct {
	ws   *websocket.Conn
	conn *activityConn // under ws: when bytes last arrived

	pong chan struct{} // a pong arrived (for the watchdog; never blocks the reader)

	writeSem chan struct{} // one data-frame writer at a time (gorilla allows one)

	mu      sync.Mutex
	pending map[string]chan []byte  // request id -> answer
	late    map[string]func([]byte) // request id -> handler of an answer its caller stopped waiting for
	ended   bool
	err     error         // why the session ended; set before done closes
	done    chan struct{} // closed when the session has ended

	// onPush receives frames without an id (pushes of live subscriptions), on
	// the reader goroutine; set before the reader starts.
	onPush func(*session, []byte)
}

func newSession(ws *websocket.Conn, conn *activityConn) *session {
	s := &session{
		ws:       ws,
		conn:     conn,
		pong:     make(chan struct{}, 1),
		writeSem: make(chan struct{}, 1),
		pending:  make(map[string]chan []byte),
		late:     make(map[string]func([]byte)),
		done:     make(chan struct{}),
	}
	ws.SetPongHandler(func(string) error {
		select {
		case s.pong <- struct{}{}:
		default:
		}
		return nil
	})
	return s
}

// readLoop reads frames until the connection fails, delivering answers to
// their requests, then ends the session with the read error and calls
// onEnd. Frames without a known id (late answers, id-less errors) are
// dropped.
func (s *session) readLoop(onEnd func(*session, error), logf func(string, ...any)) {
	for {
		kind, msg, err := s.ws.ReadMessage()
		if err != nil {
			onEnd(s, s.end(err))
			return
		}
		if kind != websocket.TextMessage {
			continue
		}
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(msg, &head) != nil || head.ID == "" {
			if s.onPush != nil && head.ID == "" && len(msg) > 0 && msg[0] == '{' {
				s.onPush(s, msg)
				continue
			}
			logf("fluxiondb: ignoring a frame without a request id: %.200s", msg)
			continue
		}
		s.mu.Lock()
		ch, ok := s.pending[head.ID]
		delete(s.pending, head.ID)
		late := s.late[head.ID]
		delete(s.late, head.ID)
		s.mu.Unlock()
		if ok {
			ch <- msg // buffered, never blocks
		} else if late != nil {
			late(msg)
		}
	}
}

// end marks the session as ended because of cause (the first cause wins),
// closes the socket and returns the effective cause. Every request waiting on
// the session returns.
func (s *session) end(cause error) error {
	s.mu.Lock()
	if s.ended {
		cause = s.err
	} else {
		s.ended = true
		s.err = cause
		close(s.done)
	}
	s.mu.Unlock()
	s.ws.Close()
	return cause
}

// shutdown ends the session on behalf of Client.Close: pending requests get
// ErrClosed, the server gets a normal close frame, and the socket is closed
// once the server answered the close (or after a short grace period).
func (s *session) shutdown() {
	s.mu.Lock()
	already := s.ended
	if !already {
		s.ended = true
		s.err = ErrClosed
		close(s.done)
	}
	s.mu.Unlock()
	if !already {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil {
			// The reader returns when the server echoes the close.
			s.ws.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
	s.ws.Close()
}

// roundTrip sends frame as request id and waits for its answer, the end of
// the session, or the end of ctx, whichever comes first. When the session
// had ended before the frame was written, the error is a *notSentError, and
// the request can safely be sent on another connection. When ctx ends after
// the frame was handed to the writer, late (if not nil) receives the answer
// should it still arrive on this session (on the reader goroutine: it must
// not block).
func (s *session) roundTrip(ctx context.Context, id string, frame []byte, late func([]byte)) ([]byte, error) {
	ch := make(chan []byte, 1)
	s.mu.Lock()
	if s.ended {
		err := s.err
		s.mu.Unlock()
		return nil, &notSentError{lostError(err)}
	}
	s.pending[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()

	if started, err := s.write(ctx, frame); err != nil {
		if started && late != nil && ctx.Err() != nil {
			s.awaitLate(id, ch, late)
		}
		return nil, err
	}

	select {
	case msg := <-ch:
		return msg, nil
	case <-s.done:
		select {
		case msg := <-ch: // the answer arrived just before the drop
			return msg, nil
		default:
		}
		return nil, lostError(s.err)
	case <-ctx.Done():
		if late != nil {
			s.awaitLate(id, ch, late)
		}
		return nil, context.Cause(ctx)
	}
}

// awaitLate hands the answer to request id, which its caller no longer
// waits for on ch, to late once it arrives.
func (s *session) awaitLate(id string, ch chan []byte, late func([]byte)) {
	s.mu.Lock()
	if _, waiting := s.pending[id]; waiting {
		delete(s.pending, id)
		if !s.ended {
			s.late[id] = late
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	late(<-ch) // the reader took it and is handing it over (ch is buffered)
}

// write sends one text frame. Waiting for another goroutine's write ends
// with ctx (the frame is then not sent). Once started, the frame is written in
// full whatever ctx does, on a goroutine of its own, so that one caller's
// deadline never cuts the shared connection mid-frame: when ctx ends first,
// write returns at once with its cause and the frame goes out after it. A
// failed write ends the session (the stream may hold half a frame). started
// reports whether the frame was handed to the writer.
func (s *session) write(ctx context.Context, frame []byte) (started bool, err error) {
	select {
	case s.writeSem <- struct{}{}:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	case <-s.done:
		return false, &notSentError{lostError(s.err)}
	}
	written := make(chan error, 1)
	go func() {
		defer func() { <-s.writeSem }()
		err := s.ws.WriteMessage(websocket.TextMessage, frame)
		if errors.Is(err, websocket.ErrCloseSent) {
			// The connection answered the server's close frame before the reader
			// ended the session: the server never got this frame whole, so it can
			// go out on the next connection.
			err = &notSentError{lostError(s.end(err))}
		} else if err != nil {
			err = lostError(s.end(err))
		}
		written <- err
	}()
	select {
	case err := <-written:
		return true, err
	case <-ctx.Done():
		return true, context.Cause(ctx)
	}
}

// cause returns why the session ended (nil while it has not).
func (s *session) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// isEnded reports whether the session has ended.
func (s *session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// notSentError marks a request that never left the client because its
// session had already ended.
type notSentError struct{ err error }

// Error returns the wrapped error's text.
func (e *notSentError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *notSentError) Unwrap() error { return e.err }

// lostError turns the cause of a session's end into the error returned to a
// request that was waiting on it.
func lostError(cause error) error {
	if cause == ErrClosed {
		return ErrClosed
	}
	return &connLostError{cause: cause}
}
