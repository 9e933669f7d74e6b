package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a creditsd process the load tool started, and what it logged.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *logTail
	done chan error // Wait's result, once
}

// buildServer compiles ./cmd/creditsd into dir, from the module the load
// tool is run in. -buildvcs=auto stamps the commit into the binary (its
// `creditsd version`, which the report prints) even where GOFLAGS turns
// stamping off. Where git cannot read the checkout (one owned by another
// user, say), stamping fails the build: it is built again unstamped, so
// the run goes on with its server's commit unknown.
func buildServer(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	bin := filepath.Join(dir, "creditsd")
	fmt.Fprintln(stderr, "building creditsd (go build -buildvcs=auto -o", bin, "./cmd/creditsd)")
	out, err := goBuild(ctx, bin, "-buildvcs=auto")
	if err != nil {
		fmt.Fprintf(stderr, "building creditsd again without its commit stamped: %v\n%s", err, out)
		out, err = goBuild(ctx, bin)
	}
	if err != nil {
		return "", fmt.Errorf("building creditsd: %w\n%s", err, out)
	}
	return bin, nil
}

func goBuild(ctx context.Context, bin string, flags ...string) ([]byte, error) {
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/creditsd/creditsd/cmd/creditsd")
	return exec.CommandContext(ctx, "go", args...).CombinedOutput()
}

// startServer runs `bin serve --config config` and waits for its
// "listening" line. CREDITSD_CONFIG is cleared so that only config counts;
// env adds to the environment.
func startServer(bin, config string, env ...string) (*server, error) {
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Env = append(append(os.Environ(), "CREDITSD_CONFIG="), env...)
	// Its own process group, so that a Ctrl-C in the terminal reaches the
	// tool alone, which reports and then stops the server; and stopped if
	// the tool dies without doing so (a panic, a kill). Linux sends
	// Pdeathsig when the thread that started it ends (golang/go#27505); the
	// runtime keeps its threads, as nothing here locks one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, log: &logTail{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go s.read(out, addr)
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.addr = <-addr:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("creditsd exited before listening (%v):\n%s", err, s.log)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("creditsd did not log its address in 60s:\n%s", s.log)
	}
}

// read drains the server's log for as long as it runs (a full pipe would
// stall the server) and keeps its tail for error messages.
func (s *server) read(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		s.log.add(line)
		if !found {
			if a, ok := listeningAddr(line); ok {
				found = true
				addr <- a
			}
		}
	}
}

// listeningAddr finds the bound address in the JSON "listening" log line.
func listeningAddr(line string) (string, bool) {
	var rec struct{ Msg, Addr string }
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "listening" || rec.Addr == "" {
		return "", false
	}
	return rec.Addr, true
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop asks for a graceful shutdown and waits for it; a server that does
// not stop in 30 s is killed.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("creditsd exit: %w\n%s", err, s.log)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("creditsd did not stop on SIGTERM in 30s")
	}
}

// logTail keeps the last lines of a log.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

const logTailLines = 40

func (t *logTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 2*logTailLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-logTailLines:]...)
	}
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines[max(0, len(t.lines)-logTailLines):], "\n")
}
