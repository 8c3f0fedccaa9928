package fluxiondb_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// fakeServer is a scripted WebSocket server for wire-level tests that do
// not need the real database: it records every request frame and answers
// through reply.
type fakeServer struct {
	*httptest.Server
	frames  chan []byte           // every request frame received
	queries chan url.Values       // the query of every upgrade
	ready   string                // first frame sent; "" sends nothing
	reply   func([]byte) [][]byte // frames answering a request

	mu    sync.Mutex
	conns []*websocket.Conn
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		frames:  make(chan []byte, 100),
		queries: make(chan url.Values, 10),
		ready:   `{"type":"ready","message":"Authentication successful"}`,
		reply:   echoID,
	}
	upgrader := websocket.Upgrader{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.queries <- r.URL.Query()
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, ws)
		f.mu.Unlock()
		defer ws.Close()
		if f.ready != "" {
			ws.WriteMessage(websocket.TextMessage, []byte(f.ready))
		}
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f.frames <- msg
			for _, out := range f.reply(msg) {
				ws.WriteMessage(websocket.TextMessage, out)
			}
		}
	}))
	t.Cleanup(f.closeAll)
	return f
}

// URL is the server's ws:// address.
func (f *fakeServer) URL() string { return "ws" + strings.TrimPrefix(f.Server.URL, "http") }

func (f *fakeServer) closeAll() {
	f.mu.Lock()
	for _, ws := range f.conns {
		ws.Close()
	}
	f.mu.Unlock()
	f.Server.Close()
}

// echoID answers a request with {"id": <its id>}.
func echoID(frame []byte) [][]byte {
	var env struct {
		ID string `json:"id"`
	}
	json.Unmarshal(frame, &env)
	out, _ := json.Marshal(map[string]string{"id": env.ID})
	return [][]byte{out}
}
