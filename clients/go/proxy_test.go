package fluxiondb_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateProxy forwards TCP connections to the server. Besides cutting them all
// at once, it can hold back what clients send past each connection's first
// chunk (its upgrade request: new connections still become ready) by no
// longer reading it, and it records what the server sends (to count pushes).
// What the server sends is forwarded frame by frame, so that the proxy can
// also cut a connection right after a given push, hold a sub answer until
// after the backlog it announces, or strip that count.
type gateProxy struct {
	t  *testing.T
	l  net.Listener
	mu sync.Mutex
	// open holds every proxied connection, both sides.
	open []net.Conn
	// gate is closed while requests flow; held requests wait for a new one
	// to close.
	gate chan struct{}
	// newGate is closed while new connections are forwarded; accepted ones
	// wait (heldNew counts them) for a new one to close before the proxy
	// connects them to the server.
	newGate chan struct{}
	heldNew int
	// closed: the proxy was closed.
	closed bool
	// held counts the client chunks waiting at the gate.
	held int
	// fromServer is everything the server sent.
	fromServer bytes.Buffer
	// cutAfter > 0: the next connection that passes that many rec pushes
	// (counted from the first one after it was set) is cut right after the
	// last of them (once).
	cutAfter int
	// reorder: a sub answer announcing "backlog":K is forwarded after the K
	// frames that follow it. strip: "backlog":K is removed from answers.
	reorder, strip bool
	// links holds every connection's state; accepted counts them.
	links    []*link
	accepted int
	// pongs counts the pong frames the server sent.
	pongs int
}

func startGateProxy(t *testing.T, port int) *gateProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, "listen", err)
	p := &gateProxy{t: t, l: l, gate: make(chan struct{}), newGate: make(chan struct{})}
	close(p.gate)
	close(p.newGate)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			newGate := p.newGate
			p.heldNew++
			p.mu.Unlock()
			go func() {
				<-newGate
				p.mu.Lock()
				p.heldNew--
				closed := p.closed
				p.mu.Unlock()
				if closed {
					in.Close()
					return
				}
				out, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
				if err != nil {
					in.Close()
					return
				}
				lk := &link{}
				p.mu.Lock()
				p.open = append(p.open, in, out)
				p.links = append(p.links, lk)
				p.accepted++
				p.mu.Unlock()
				go p.forwardRequests(in, out, lk)
				go p.forwardAnswers(out, in, lk)
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *gateProxy) url() string { return "ws://" + p.l.Addr().String() }

func (p *gateProxy) forwardRequests(in, out net.Conn, lk *link) {
	defer func() {
		if !lk.frozen.Load() {
			out.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for first := true; ; first = false {
		n, err := in.Read(buf)
		if n > 0 && !lk.frozen.Load() {
			if !first {
				p.mu.Lock()
				gate := p.gate
				p.held++
				p.mu.Unlock()
				<-gate
				p.mu.Lock()
				p.held--
				p.mu.Unlock()
			}
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *gateProxy) forwardAnswers(out, in net.Conn, lk *link) {
	cut := false
	defer func() {
		if !cut && !lk.frozen.Load() {
			in.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	var pending []byte
	handshake := true
	recs, cutAt := 0, 0
	var held []byte
	heldLeft := 0
	// forward writes one frame of the server to the client; false once the
	// connection was cut after it.
	forward := func(frame []byte, text string, isText bool) bool {
		p.mu.Lock()
		reorder, strip := p.reorder, p.strip
		p.mu.Unlock()
		isAnswer := isText && strings.HasPrefix(text, `{"id":`)
		if m := backlogRe.FindStringSubmatch(text); isAnswer && m != nil {
			if strip {
				text = backlogRe.ReplaceAllString(text, "")
				frame = textFrame(text)
			} else if k, _ := strconv.Atoi(m[1]); reorder && k > 0 {
				held, heldLeft = frame, k
				return true
			}
		}
		if _, err := in.Write(frame); err != nil {
			return false
		}
		if held != nil && isText && !isAnswer {
			if heldLeft--; heldLeft == 0 {
				if _, err := in.Write(held); err != nil {
					return false
				}
				held = nil
			}
		}
		if isText && strings.HasPrefix(text, `{"type":"rec"`) {
			recs++
			p.mu.Lock()
			if cutAt == 0 && p.cutAfter > 0 {
				cutAt, p.cutAfter = recs-1+p.cutAfter, 0
			}
			p.mu.Unlock()
			if cutAt > 0 && recs >= cutAt {
				// What was forwarded reaches the client, then the end.
				cut = true
				if tc, ok := in.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				out.Close()
				return false
			}
		}
		return true
	}
	for {
		n, err := out.Read(buf)
		if n > 0 && !lk.frozen.Load() {
			p.mu.Lock()
			p.fromServer.Write(buf[:n])
			p.mu.Unlock()
			pending = append(pending, buf[:n]...)
			if handshake {
				if end := bytes.Index(pending, []byte("\r\n\r\n")); end >= 0 {
					if _, werr := in.Write(pending[:end+4]); werr != nil {
						return
					}
					pending = append([]byte(nil), pending[end+4:]...)
					handshake = false
				}
			}
			for !handshake {
				header, total := frameLength(pending)
				if total == 0 {
					break
				}
				frame := append([]byte(nil), pending[:total]...)
				pending = pending[total:]
				isText := frame[0]&0x0f == 1
				if frame[0]&0x0f == 0xA {
					p.mu.Lock()
					p.pongs++
					p.mu.Unlock()
				}
				text := ""
				if isText {
					text = string(frame[header:])
				}
				if !forward(frame, text, isText) {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

var backlogRe = regexp.MustCompile(`,"backlog":(\d+)`)

// frameLength returns the header length and the total length of the
// WebSocket frame at the start of buf (a server's: unmasked), or 0, 0 when
// it is incomplete.
func frameLength(buf []byte) (header, total int) {
	if len(buf) < 2 {
		return 0, 0
	}
	header, length := 2, int(buf[1]&0x7f)
	switch length {
	case 126:
		if len(buf) < 4 {
			return 0, 0
		}
		header, length = 4, int(binary.BigEndian.Uint16(buf[2:]))
	case 127:
		if len(buf) < 10 {
			return 0, 0
		}
		header, length = 10, int(binary.BigEndian.Uint64(buf[2:]))
	}
	if buf[1]&0x80 != 0 {
		header += 4
	}
	if len(buf) < header+length {
		return 0, 0
	}
	return header, header + length
}

// textFrame is an unmasked, final text frame holding text.
func textFrame(text string) []byte {
	var frame []byte
	switch n := len(text); {
	case n < 126:
		frame = []byte{0x81, byte(n)}
	case n < 1<<16:
		frame = binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(n))
	default:
		frame = binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(n))
	}
	return append(frame, text...)
}

// cutAfterRecs cuts, once, the next connection that passes n rec pushes,
// right after the n-th.
func (p *gateProxy) cutAfterRecs(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter = n
}

// answersAfterBacklog forwards each sub answer announcing "backlog":K after
// the K frames that follow it: the backlog then comes before its answer, an
// order the protocol allows.
func (p *gateProxy) answersAfterBacklog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reorder = true
}

// link is one proxied connection.
type link struct {
	// frozen: nothing is forwarded any more either way, and neither side is
	// closed when the other ends (a half-open link).
	frozen atomic.Bool
}

// freeze freezes every connection open now, as a half-open link would (a
// NAT that dropped the flow, a pulled cable, a suspended VM): nothing is
// forwarded any more in either direction, and neither side is closed or
// told, whatever the other sends or closes. Later connections are forwarded
// as usual.
func (p *gateProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen.Store(true)
	}
}

// pongCount returns how many pong frames the server sent through the proxy.
func (p *gateProxy) pongCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pongs
}

// connections returns how many connections the proxy accepted so far.
func (p *gateProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// stripBacklog removes "backlog":K from sub answers, as an older server
// sends them.
func (p *gateProxy) stripBacklog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.strip = true
}

// hold stops forwarding what clients send (past a connection's first chunk).
func (p *gateProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

// release forwards what was held and stops holding.
func (p *gateProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// waitHeld waits until a client chunk is held at the gate.
func (p *gateProxy) waitHeld(what string) {
	p.t.Helper()
	eventually(p.t, 20*time.Second, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.held > 0
	})
}

// holdNew keeps the connections accepted from now on from reaching the
// server: they wait, open, until releaseNew.
func (p *gateProxy) holdNew() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.newGate:
		p.newGate = make(chan struct{})
	default:
	}
}

// releaseNew connects the held new connections to the server, and stops
// holding them.
func (p *gateProxy) releaseNew() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.newGate:
	default:
		close(p.newGate)
	}
}

// waitHeldNew waits until a new connection is held.
func (p *gateProxy) waitHeldNew(what string) {
	p.t.Helper()
	eventually(p.t, 20*time.Second, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.heldNew > 0
	})
}

// cut drops every proxied connection.
func (p *gateProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

// close stops accepting and drops every connection (what is held is released
// into closed sockets).
func (p *gateProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.l.Close()
	p.cut()
	p.release()
	p.releaseNew()
}

// pushes counts the rec pushes of collection col the server has sent through
// the proxy.
func (p *gateProxy) pushes(col string) int {
	re := regexp.MustCompile(`"type":"rec","sub":"s\d+","col":"` + regexp.QuoteMeta(col) + `"`)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(re.FindAllIndex(p.fromServer.Bytes(), -1))
}
