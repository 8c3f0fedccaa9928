package vectors

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxiondb/fluxiondb/clients/go/internal/testserver"
	"github.com/gorilla/websocket"
)

// readTimeout bounds the wait for one expected frame.
const readTimeout = 5 * time.Second

// sharedLanes is the number of servers that replay the cases which can
// share a server, in parallel; each runs its cases one after another and
// sends every case's cleanup frames afterwards.
const sharedLanes = 2

// TestProtocolVectors replays every case of protocol.json (not the restart
// cases) over raw WebSocket connections, as tests/vectors/README.md
// describes. Set FLUXIONDB_VECTORS_FRESH=1 to give every case its own
// server.
func TestProtocolVectors(t *testing.T) {
	testserver.Require(t)
	file, err := Load(Path())
	if err != nil {
		t.Fatal(err)
	}
	if file.MasterKey != testserver.MasterKey {
		t.Fatalf("the vectors use master key %q; the test servers use %q", file.MasterKey, testserver.MasterKey)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases in the vectors file")
	}

	allFresh := os.Getenv("FLUXIONDB_VECTORS_FRESH") == "1"
	lanes := make([][]Case, sharedLanes)
	var fresh []Case
	n := 0
	for _, c := range file.Cases {
		if allFresh || needsOwnServer(c) {
			fresh = append(fresh, c)
			continue
		}
		lanes[n%sharedLanes] = append(lanes[n%sharedLanes], c) // document order kept per lane
		n++
	}

	for i, cases := range lanes {
		cases := cases
		t.Run(fmt.Sprintf("shared%d", i), func(t *testing.T) {
			t.Parallel()
			if len(cases) == 0 {
				return
			}
			srv := testserver.Start(t)
			for _, c := range cases {
				c := c
				t.Run(c.Name, func(t *testing.T) { replay(t, srv.URL(), c, true) })
			}
		})
	}
	t.Run("fresh", func(t *testing.T) {
		t.Parallel()
		for _, c := range fresh {
			c := c
			t.Run(c.Name, func(t *testing.T) {
				srv := testserver.Start(t)
				replay(t, srv.URL(), c, false)
			})
		}
	})
}

// needsOwnServer reports whether a case must run on a server of its own:
// it needs an empty server, it would touch other cases' data, or it lists
// connections (which other cases' closing connections could disturb).
func needsOwnServer(c Case) bool {
	if c.FreshServer || c.ReferenceUnsafe {
		return true
	}
	for _, s := range c.Steps {
		if strings.Contains(s.Shared, "connections") {
			return true
		}
	}
	return false
}

// replayer holds the open connections of one case.
type replayer struct {
	t     *testing.T
	base  string
	c     Case
	conns map[string]*websocket.Conn
}

func replay(t *testing.T, base string, c Case, shared bool) {
	r := &replayer{t: t, base: base, c: c, conns: make(map[string]*websocket.Conn)}
	if shared {
		defer r.cleanup() // runs after closeAll
	}
	defer r.closeAll()
	for i, s := range c.Steps {
		if diff := r.step(s); diff != "" {
			t.Fatalf("%s (%s)\nstep %d %s: %s", c.Vector, c.Title, i, describe(s), diff)
		}
	}
}

// step runs one step and returns "" or the mismatch.
func (r *replayer) step(s Step) string {
	switch {
	case s.Open != "":
		return r.open(s)
	case s.Close != "":
		return r.closeConn(s.Close)
	case s.Conn != "":
		ws := r.conns[s.Conn]
		if ws == nil {
			return fmt.Sprintf("connection %s is not open", s.Conn)
		}
		if s.Send != nil {
			ws.SetWriteDeadline(time.Now().Add(readTimeout))
			if err := ws.WriteMessage(websocket.TextMessage, []byte(*s.Send)); err != nil {
				return fmt.Sprintf("cannot send on %s: %v", s.Conn, err)
			}
		}
		if s.SendFrame != nil {
			return r.sendRaw(s)
		}
		if !s.HasExpect {
			return ""
		}
		return r.expect(s.Conn, s.Expect)
	default:
		return "unknown step"
	}
}

// open dials a named connection and matches its first frame.
func (r *replayer) open(s Step) string {
	spec, ok := r.c.Connections[s.Open]
	if !ok {
		return fmt.Sprintf("connection %s is not described", s.Open)
	}
	url := r.base + spec.Path
	if spec.Query != nil {
		url += "?" + *spec.Query
	}
	dialer := websocket.Dialer{HandshakeTimeout: readTimeout, WriteBufferSize: r.writeBufferFor(s.Open)}
	ws, resp, err := dialer.Dial(url, nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
		}
		got := Frame{Err: fmt.Errorf("upgrade failed%s: %w", status, err)}
		if !s.HasExpect {
			return got.String()
		}
		return Match(s.Expect, got)
	}
	if old := r.conns[s.Open]; old != nil {
		old.Close()
	}
	r.conns[s.Open] = ws
	if !s.HasExpect {
		return ""
	}
	return r.expect(s.Open, s.Expect)
}

// writeBufferFor sizes a connection's write buffer so that the largest raw
// frame the case sends on it goes out as one frame, not as fragments.
func (r *replayer) writeBufferFor(name string) int {
	size := 0
	for _, s := range r.c.Steps {
		if s.Conn == name && s.SendFrame != nil && s.SendFrame.Length > size {
			size = s.SendFrame.Length
		}
	}
	if size > 0 {
		return size + 64
	}
	return 0 // gorilla's default
}

// expect reads the next frame of a connection and matches it.
func (r *replayer) expect(name string, expect any) string {
	ws := r.conns[name]
	got := readFrame(ws)
	if got.Closed || got.Err != nil {
		ws.Close()
		delete(r.conns, name)
	}
	return Match(expect, got)
}

// sendRaw writes a frame that is not a plain text (binary, invalid UTF-8,
// oversized) and matches what follows. The write runs beside the read,
// since the server may close before it has read the whole frame.
func (r *replayer) sendRaw(s Step) string {
	ws := r.conns[s.Conn]
	f := s.SendFrame
	var data []byte
	switch {
	case f.Hex != "":
		var err error
		if data, err = hex.DecodeString(f.Hex); err != nil {
			return fmt.Sprintf("bad hex in the vector: %v", err)
		}
	case f.Length > 0:
		data = bytes.Repeat([]byte(f.Fill), f.Length/max(len(f.Fill), 1))
	}
	op := websocket.TextMessage
	if f.Opcode == "binary" {
		op = websocket.BinaryMessage
	}
	written := make(chan error, 1)
	go func() {
		ws.SetWriteDeadline(time.Now().Add(4 * readTimeout))
		written <- ws.WriteMessage(op, data)
	}()
	diff := ""
	if s.HasExpect {
		diff = r.expect(s.Conn, s.Expect)
	}
	if s.HasExpect && r.conns[s.Conn] == nil {
		<-written // the connection was closed, which ends the write
		return diff
	}
	select {
	case err := <-written:
		if err != nil && diff == "" {
			diff = fmt.Sprintf("cannot send the raw frame: %v", err)
		}
	case <-time.After(4 * readTimeout):
		ws.Close()
		<-written
		delete(r.conns, s.Conn)
		if diff == "" {
			diff = "the raw frame could not be written"
		}
	}
	return diff
}

// closeConn closes a connection normally and waits for the server's close.
func (r *replayer) closeConn(name string) string {
	ws := r.conns[name]
	if ws == nil {
		return fmt.Sprintf("connection %s is not open", name)
	}
	delete(r.conns, name)
	return closeWS(ws, name)
}

// closeWS sends a normal close and waits for the server's close frame.
func closeWS(ws *websocket.Conn, name string) string {
	defer ws.Close()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(readTimeout)); err != nil {
		return fmt.Sprintf("cannot send close on %s: %v", name, err)
	}
	for i := 0; i < 100; i++ { // skip frames still in flight, then the close
		got := readFrame(ws)
		if got.Closed {
			return ""
		}
		if got.Err != nil {
			return fmt.Sprintf("no close frame from the server after closing %s: %v", name, got.Err)
		}
	}
	return fmt.Sprintf("no close frame from the server after closing %s", name)
}

// closeAll closes the case's remaining connections.
func (r *replayer) closeAll() {
	for name := range r.conns {
		r.closeConn(name)
	}
}

// cleanup sends the case's cleanup frames on a new master connection,
// ignoring the answers.
func (r *replayer) cleanup() {
	if len(r.c.Cleanup) == 0 {
		return
	}
	url := r.base + "/?api-key=" + testserver.MasterKey + "&name=cleanup"
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: readTimeout}).Dial(url, nil)
	if err != nil {
		r.t.Errorf("cleanup: cannot connect: %v", err)
		return
	}
	defer closeWS(ws, "cleanup")
	if got := readFrame(ws); got.Closed || got.Err != nil {
		r.t.Errorf("cleanup: no ready frame: %s", got)
		return
	}
	for _, frame := range r.c.Cleanup {
		ws.SetWriteDeadline(time.Now().Add(readTimeout))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			r.t.Errorf("cleanup: %v", err)
			return
		}
		if got := readFrame(ws); got.Closed || got.Err != nil {
			r.t.Errorf("cleanup: no answer to %s: %s", frame, got)
			return
		}
	}
}

// readFrame reads one frame with the read timeout.
func readFrame(ws *websocket.Conn) Frame {
	ws.SetReadDeadline(time.Now().Add(readTimeout))
	kind, data, err := ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return Frame{Closed: true, Code: ce.Code, Reason: ce.Text}
		}
		return Frame{Err: err}
	}
	return Frame{Text: data, Binary: kind == websocket.BinaryMessage}
}

// describe summarises a step for failure messages.
func describe(s Step) string {
	switch {
	case s.Open != "":
		return "open " + s.Open
	case s.Close != "":
		return "close " + s.Close
	case s.SendFrame != nil:
		return fmt.Sprintf("%s send_frame %s (%d bytes)", s.Conn, s.SendFrame.Opcode, max(len(s.SendFrame.Hex)/2, s.SendFrame.Length))
	case s.Send != nil:
		text := *s.Send
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return s.Conn + " send " + text
	default:
		return s.Conn + " read"
	}
}
