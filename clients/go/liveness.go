package fluxiondb

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// A TCP link can die without either end being told (a NAT that dropped the
// flow, a pulled cable, a suspended VM): the socket then stays open and
// nothing arrives, ever. Each session therefore runs a watchdog: when nothing
// has been received for KeepAliveInterval it pings the server, which answers
// every ping with a pong, and when still nothing at all has arrived
// KeepAliveTimeout after the ping, it ends the session with
// ErrKeepAliveTimeout, as any other drop (requests waiting fail, the client
// reconnects and resumes subscriptions).

// clockStart is the origin of activityConn's clock (monotonic).
var clockStart = time.Now()

func monoNow() int64 { return int64(time.Since(clockStart)) }

// activityConn is the raw connection under the WebSocket, noting when bytes
// last arrived (any bytes: a large answer still arriving shows the link is
// alive, although no whole message has come yet).
type activityConn struct {
	net.Conn
	reads  atomic.Uint64 // reads that returned bytes
	lastRx atomic.Int64  // monoNow() of the last of them
}

func newActivityConn(c net.Conn) *activityConn {
	a := &activityConn{Conn: c}
	a.lastRx.Store(monoNow())
	return a
}

func (a *activityConn) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.lastRx.Store(monoNow())
		a.reads.Add(1)
	}
	return n, err
}

// watch is the session's liveness watchdog; it returns when the session ends.
func (s *session) watch(interval, timeout time.Duration, logf func(string, ...any)) {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	reset := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
	probing := false
	var readsAtPing uint64
	for {
		select {
		case <-s.done:
			return
		case <-s.pong:
			if probing {
				// Answered: the next ping is due after a whole interval of silence.
				probing = false
				reset(interval)
			}
			continue
		case <-timer.C:
		}
		if probing {
			if s.conn.reads.Load() == readsAtPing {
				logf("fluxiondb: nothing received within %v of a keep-alive ping: connection lost", timeout)
				s.end(ErrKeepAliveTimeout)
				return
			}
			probing = false
		}
		silent := time.Duration(monoNow() - s.conn.lastRx.Load())
		if silent < interval {
			timer.Reset(interval - silent)
			continue
		}
		probing = true
		readsAtPing = s.conn.reads.Load()
		timer.Reset(timeout)
		// A ping that cannot be written in time (a full send buffer on a dead
		// link) changes nothing: the timeout decides.
		s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(timeout))
	}
}
