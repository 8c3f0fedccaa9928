package fluxiondb_test

import (
	"bytes"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"
)

// gateProxy forwards TCP connections to the server. Besides cutting them all
// at once, it can hold back what clients send past each connection's first
// chunk (its upgrade request: new connections still become ready) by no
// longer reading it, and it records what the server sends (to count pushes).
type gateProxy struct {
	t  *testing.T
	l  net.Listener
	mu sync.Mutex
	// open holds every proxied connection, both sides.
	open []net.Conn
	// gate is closed while requests flow; held requests wait for a new one
	// to close.
	gate chan struct{}
	// held counts the client chunks waiting at the gate.
	held int
	// fromServer is everything the server sent.
	fromServer bytes.Buffer
}

func startGateProxy(t *testing.T, port int) *gateProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, "listen", err)
	p := &gateProxy{t: t, l: l, gate: make(chan struct{})}
	close(p.gate)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, in, out)
			p.mu.Unlock()
			go p.forwardRequests(in, out)
			go p.forwardAnswers(out, in)
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *gateProxy) url() string { return "ws://" + p.l.Addr().String() }

func (p *gateProxy) forwardRequests(in, out net.Conn) {
	defer out.Close()
	buf := make([]byte, 32<<10)
	for first := true; ; first = false {
		n, err := in.Read(buf)
		if n > 0 {
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

func (p *gateProxy) forwardAnswers(out, in net.Conn) {
	defer in.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.fromServer.Write(buf[:n])
			p.mu.Unlock()
			if _, werr := in.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
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
	eventually(p.t, 5*time.Second, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.held > 0
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
	p.l.Close()
	p.cut()
	p.release()
}

// pushes counts the rec pushes of collection col the server has sent through
// the proxy.
func (p *gateProxy) pushes(col string) int {
	re := regexp.MustCompile(`"type":"rec","sub":"s\d+","col":"` + regexp.QuoteMeta(col) + `"`)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(re.FindAllIndex(p.fromServer.Bytes(), -1))
}
