package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The README's walkthrough, run as written, so that it cannot drift from
// the program. The convention (also told at the end of the section): every
// ```sh block runs, in order, in one shell; a ```text or ```json block
// right after it is what it prints. <name> matches one value and remembers
// it for later commands; … matches any text; json is compared as JSON.
const walkthroughHeading = "## Walkthrough: a local App Store in five minutes"

// walkStep is one sh block and the output the README shows for it.
type walkStep struct {
	line   int    // of the block in README.md, for messages
	script string // the commands as written
	kind   string // "text", "json", or "" when no output is shown
	want   string
}

var (
	walkFence       = regexp.MustCompile("^```(\\w*)\\s*$")
	walkToken       = regexp.MustCompile(`<[a-z][a-z0-9_]*>|…`)
	walkPlaceholder = regexp.MustCompile(`^<([a-z][a-z0-9_]*)>$`)
)

// walkthroughSteps reads the section's fenced blocks: an sh block takes
// the text or json block that follows it with no prose between.
func walkthroughSteps(t *testing.T) []walkStep {
	lines := strings.Split(docsReadme(t), "\n")
	start := slices.Index(lines, walkthroughHeading)
	require.GreaterOrEqual(t, start, 0, "README.md has no %q section", walkthroughHeading)
	type block struct {
		line       int
		info, body string
		afterProse bool
	}
	var blocks []block
	prose := false
	for i := start + 1; i < len(lines) && !strings.HasPrefix(lines[i], "## "); i++ {
		m := walkFence.FindStringSubmatch(lines[i])
		if m == nil {
			prose = prose || strings.TrimSpace(lines[i]) != ""
			continue
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		blocks = append(blocks, block{line: i + 1, info: m[1], body: strings.Join(lines[i+1:end], "\n"), afterProse: prose})
		prose, i = false, end
	}
	var steps []walkStep
	for k, b := range blocks {
		if b.info != "sh" {
			continue
		}
		s := walkStep{line: b.line, script: b.body}
		if k+1 < len(blocks) && !blocks[k+1].afterProse && slices.Contains([]string{"text", "json"}, blocks[k+1].info) {
			s.kind, s.want = blocks[k+1].info, blocks[k+1].body
		}
		steps = append(steps, s)
	}
	require.NotEmpty(t, steps)
	return steps
}

func TestReadmeWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the walkthrough needs %s: %v", tool, err)
		}
	}
	// Allowance numbers hold within one day; do not start a run across midnight.
	if left := time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)); left < 30*time.Second {
		time.Sleep(left + time.Second)
	}
	steps := walkthroughSteps(t)
	dir := t.TempDir()
	w := &walker{t: t, dir: dir, vars: map[string]string{}}
	sh := startShell(t, dir)
	for i, s := range steps {
		if strings.TrimSpace(s.script) == "go run ./cmd/creditsd serve" {
			require.Zero(t, i, "README.md:%d: start the server first", s.line)
			p := startIn(t, dir, "serve", "--listen", "127.0.0.1:0")
			w.addr = p.addr
			require.NoError(t, w.matchLog(w.expected(s.want), p.log()), "README.md:%d: serve's log", s.line)
			continue
		}
		require.NotEmpty(t, w.addr, "README.md:%d: the walkthrough must start the server first", s.line)
		script, err := w.command(s.script)
		require.NoError(t, err, "README.md:%d", s.line)
		got, err := sh.run(script)
		require.NoError(t, err, "README.md:%d: %s\nprinted:\n%s", s.line, s.script, got)
		switch s.kind {
		case "text":
			err = w.matchText(w.expected(s.want), got)
		case "json":
			err = w.matchJSON(s.want, got)
		}
		require.NoError(t, err, "README.md:%d: %s\nprinted:\n%s", s.line, s.script, got)
	}
}

// walker holds what the steps share: the server's address and the values
// that <name> placeholders matched.
type walker struct {
	t    *testing.T
	dir  string
	addr string
	vars map[string]string
}

// command is a README command as the test runs it: the built binary for
// `go run ./cmd/creditsd`, simulations sent to this server, its address
// for the default one, and <name> replaced by the value printed earlier.
func (w *walker) command(script string) (string, error) {
	bin := "'" + binary + "'"
	script = strings.NewReplacer(
		"go run ./cmd/creditsd simulate", bin+" simulate --server http://"+w.addr,
		"go run ./cmd/creditsd", bin,
		"localhost:8080", w.addr, "127.0.0.1:8080", w.addr).Replace(script)
	var err error
	script = walkToken.ReplaceAllStringFunc(script, func(p string) string {
		v, ok := w.vars[strings.Trim(p, "<>")]
		if !ok && err == nil {
			err = fmt.Errorf("%s: no earlier output printed it", p)
		}
		return v
	})
	return script, err
}

// expected is the README's output with the default address replaced.
func (w *walker) expected(want string) string {
	return strings.NewReplacer("localhost:8080", w.addr, "127.0.0.1:8080", w.addr).Replace(want)
}

// lineRegexp matches one printed line: <name> is one value (no space or
// quote) that is captured, … is anything.
func lineRegexp(want string) (*regexp.Regexp, []string) {
	var b strings.Builder
	var names []string
	last := 0
	for _, m := range walkToken.FindAllStringIndex(want, -1) {
		b.WriteString(regexp.QuoteMeta(want[last:m[0]]))
		if tok := want[m[0]:m[1]]; tok == "…" {
			b.WriteString(".*")
		} else {
			b.WriteString(`([^\s"]+)`)
			names = append(names, strings.Trim(tok, "<>"))
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(want[last:]))
	return regexp.MustCompile("^" + b.String() + "$"), names
}

// matchLine matches got against want, remembering what placeholders matched.
func (w *walker) matchLine(want, got string) bool {
	re, names := lineRegexp(want)
	m := re.FindStringSubmatch(strings.TrimRight(got, " "))
	for i, name := range names {
		if m != nil {
			w.vars[name] = m[i+1]
		}
	}
	return m != nil
}

func (w *walker) matchText(want, got string) error {
	wl, gl := strings.Split(strings.TrimRight(want, "\n"), "\n"), strings.Split(got, "\n")
	if len(wl) != len(gl) {
		return fmt.Errorf("printed %d lines, the README shows %d", len(gl), len(wl))
	}
	for i := range wl {
		if !w.matchLine(wl[i], gl[i]) {
			return fmt.Errorf("line %d:\n  README:  %s\n  printed: %s", i+1, wl[i], gl[i])
		}
	}
	return nil
}

// matchLog finds each line the README shows, in order, in serve's log.
func (w *walker) matchLog(want, log string) error {
	logLines := strings.Split(log, "\n")
	for _, wl := range strings.Split(strings.TrimSpace(want), "\n") {
		i := slices.IndexFunc(logLines, func(l string) bool { return w.matchLine(wl, l) })
		if i < 0 {
			return fmt.Errorf("the log has no line, in this order, like\n  %s\nlog:\n%s", wl, log)
		}
		logLines = logLines[i+1:]
	}
	return nil
}

func (w *walker) matchJSON(want, got string) error {
	var wv, gv any
	if err := decodeNumbers(want, &wv); err != nil {
		return fmt.Errorf("the README's json block: %w", err)
	}
	if err := decodeNumbers(got, &gv); err != nil {
		return fmt.Errorf("the output is not JSON: %w", err)
	}
	return w.matchValue("$", wv, gv)
}

func decodeNumbers(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}

// matchValue compares JSON values: objects key by key (the same keys),
// arrays item by item, and a string that is one <name> matches any value.
func (w *walker) matchValue(path string, want, got any) error {
	switch wv := want.(type) {
	case string:
		if m := walkPlaceholder.FindStringSubmatch(wv); m != nil {
			s, ok := got.(string)
			if !ok {
				raw, _ := json.Marshal(got)
				s = string(raw)
			}
			w.vars[m[1]] = s
			return nil
		}
		if gs, ok := got.(string); ok && w.matchLine(wv, gs) {
			return nil
		}
	case map[string]any:
		gm, ok := got.(map[string]any)
		if !ok || !slices.Equal(sortedKeys(wv), sortedKeys(gm)) {
			break
		}
		for _, k := range sortedKeys(wv) {
			if err := w.matchValue(path+"."+k, wv[k], gm[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		ga, ok := got.([]any)
		if !ok || len(ga) != len(wv) {
			break
		}
		for i := range wv {
			if err := w.matchValue(fmt.Sprintf("%s[%d]", path, i), wv[i], ga[i]); err != nil {
				return err
			}
		}
		return nil
	default: // json.Number, bool, nil
		if want == got {
			return nil
		}
	}
	wj, _ := json.Marshal(want)
	gj, _ := json.Marshal(got)
	return fmt.Errorf("%s:\n  README:  %s\n  printed: %s", path, wj, gj)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// walkShell is one bash that runs every step, so that variables set by one
// (ALICE=$(…)) serve the next. It stops at the first failing command.
type walkShell struct {
	stdin  io.WriteCloser
	lines  chan string
	stderr string // a file: the shell writes it directly, so reading it races with nothing
}

// walkDone is printed after each step, to tell where its output ends.
const walkDone = "__creditsd_walkthrough_step_done__"

func startShell(t *testing.T, dir string) *walkShell {
	sh := &walkShell{lines: make(chan string, 64), stderr: filepath.Join(t.TempDir(), "stderr")}
	stderr, err := os.Create(sh.stderr)
	require.NoError(t, err)
	defer stderr.Close() // the shell has its own copy
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir, cmd.Stderr = dir, stderr
	cmd.Env = append(os.Environ(), "CREDITSD_CONFIG=")
	sh.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		s := bufio.NewScanner(stdout)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			sh.lines <- s.Text()
		}
		close(sh.lines)
	}()
	t.Cleanup(func() {
		sh.stdin.Close()
		time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		_ = cmd.Wait()
	})
	_, err = io.WriteString(sh.stdin, "set -euo pipefail\n")
	require.NoError(t, err)
	return sh
}

// run runs script (its stdin /dev/null, so that no command eats the
// next step) and returns what it printed.
func (sh *walkShell) run(script string) (string, error) {
	if _, err := fmt.Fprintf(sh.stdin, "{\n%s\n} </dev/null\necho; echo %s\n", script, walkDone); err != nil {
		return "", err
	}
	var out strings.Builder
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-sh.lines:
			switch {
			case !ok:
				stderr, _ := os.ReadFile(sh.stderr)
				return out.String(), fmt.Errorf("a command failed; stderr:\n%s", stderr)
			case line == walkDone:
				return strings.TrimRight(out.String(), "\n"), nil
			}
			out.WriteString(line + "\n")
		case <-timeout:
			return out.String(), fmt.Errorf("no end after 20 s")
		}
	}
}
