// Package testserver starts the real FluxionDB server binary for tests.
//
// The binary is taken from the FLUXIONDB_BIN environment variable, or else
// from target/debug/fluxiondb at the repository root (clients/go/../..). It is
// never built here: run `cargo build` first. A missing binary fails the test.
package testserver

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MasterKey is the secret key the servers are started with.
const MasterKey = "master-key"

const startTimeout = 15 * time.Second

// Server is one running server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	args []string // flags given to StartWithArgs
	Port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncBuffer
}

// BinaryPath returns the server binary to use and whether it exists.
func BinaryPath() (string, bool) {
	bin := os.Getenv("FLUXIONDB_BIN")
	if bin == "" {
		_, file, _, _ := runtime.Caller(0)
		// file = <repo>/clients/go/internal/testserver/server.go
		root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
		bin = filepath.Join(root, "target", "debug", "fluxiondb")
	}
	bin, _ = filepath.Abs(bin)
	info, err := os.Stat(bin)
	return bin, err == nil && !info.IsDir()
}

// Require fails the test when the server binary is missing.
func Require(t testing.TB) string {
	t.Helper()
	bin, ok := BinaryPath()
	if !ok {
		t.Fatalf("FluxionDB server binary not found at %s: run `cargo build` in the repository root "+
			"(or set FLUXIONDB_BIN to the binary) before `go test`", bin)
	}
	return bin
}

// Start starts a server on an ephemeral port of 127.0.0.1 and stops it when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithArgs(t)
}

// StartWithArgs is Start with more command-line flags for the server (for
// example "--max-connections", "1"), also given on Restart.
func StartWithArgs(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Require(t), dir: t.TempDir(), args: args}
	if err := s.start(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the base WebSocket URL of the server, without query.
func (s *Server) URL() string { return fmt.Sprintf("ws://127.0.0.1:%d", s.Port) }

// start launches the binary and waits for its "listening" line.
func (s *Server) start(port int) error {
	args := append([]string{"--secret-key", MasterKey, "--port", strconv.Itoa(port), "--bind", "127.0.0.1"}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Env = serverEnv()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	portCh := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found && strings.HasPrefix(line, "fluxiondb listening on ") {
				if p, err := strconv.Atoi(line[strings.LastIndex(line, ":")+1:]); err == nil {
					found = true
					portCh <- p
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()

	select {
	case p := <-portCh:
		s.mu.Lock()
		s.cmd, s.exited, s.stderr, s.Port = cmd, exited, stderr, p
		s.mu.Unlock()
		return nil
	case <-exited:
		return fmt.Errorf("server exited before listening (%v); stderr:\n%s", cmd.ProcessState, stderr.String())
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("server printed no listening line within %v; stderr:\n%s", startTimeout, stderr.String())
	}
}

// serverEnv is the test process's environment without the variables the
// server reads as fallbacks for its flags (a stray DATA_DIR would turn on
// persistence, for instance).
func serverEnv() []string {
	drop := map[string]bool{"SECRET_KEY": true, "DATA_DIR": true, "FLUSH_INTERVAL": true, "PORT": true,
		"BIND": true, "LOG_LEVEL": true, "MAX_CONNECTIONS": true, "MAX_MESSAGE_MIB": true,
		"MAX_RESPONSE_MIB": true, "SEND_BUFFER_MIB": true, "IDLE_TIMEOUT": true, "HANDSHAKE_TIMEOUT": true,
		"FSYNC": true}
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !drop[name] {
			env = append(env, kv)
		}
	}
	return env
}

// Signal sends sig to the running server process.
func (s *Server) Signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(sig)
	}
}

// Pause stops the server process with SIGSTOP and waits until every one of
// its threads is stopped, so that it answers nothing until Resume.
func (s *Server) Pause() {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("Pause: server not running")
	}
	cmd.Process.Signal(syscall.SIGSTOP)
	deadline := time.Now().Add(5 * time.Second)
	for !allThreadsStopped(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			s.t.Fatal("Pause: the server did not stop within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() { s.Signal(syscall.SIGCONT) }

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped), according to /proc.
func allThreadsStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(task)
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
			return false
		}
	}
	return true
}

// Kill kills the server with SIGKILL and waits until it is gone.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill() // also kills a paused process, without letting it run first
	<-exited
}

// Terminate sends SIGTERM and waits for the exit (SIGKILL after 10 s). It
// returns the exit code, or -1 when the process had to be killed.
func (s *Server) Terminate() int {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return -1
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		return -1
	}
}

// Restart starts the server again on the port it had. The previous process
// must have been stopped.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(s.Port); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("restart on port %d failed: %v", s.Port, err)
}

// Stop terminates the server (if running); used as the test cleanup. The
// server's stderr is logged when the test failed.
func (s *Server) Stop() {
	s.Terminate()
	s.mu.Lock()
	stderr := s.stderr
	s.mu.Unlock()
	if s.t.Failed() && stderr != nil && stderr.Len() > 0 {
		s.t.Logf("server stderr (last 4 KiB):\n%s", stderr.Tail(4096))
	}
}

// syncBuffer is a bounded bytes.Buffer safe for a writer and concurrent
// readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// maxLog bounds the stderr kept per server (only the tail is useful).
const maxLog = 256 << 10

// Write appends p, dropping the older half of the buffer when it is full.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxLog {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		rest := append([]byte(nil), keep...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return b.buf.Write(p)
}

// String returns the buffered text.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns the number of buffered bytes.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Tail returns the last n bytes written.
func (b *syncBuffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	data := b.buf.Bytes()
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
