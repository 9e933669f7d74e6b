package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// binary is the creditsd program that end-to-end tests start, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "creditsd-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "creditsd")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building creditsd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	e2eBundle = "com.example.sora"
	e2ePack   = "com.example.sora.credits10"
	e2eSecret = "an-end-to-end-test-secret-of-more-than-32-bytes"
)

// world is one running creditsd with its own test CA and temp database.
type world struct {
	t      *testing.T
	dir    string
	ca     *devca.CA
	tokens entitlements.TokenDeriver
	config string
	proc   *process
}

// newWorld writes a config that trusts a CA made here and starts creditsd
// on port 0 with a temp database.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, newCA(t), "")
}

func newCA(tb testing.TB) *devca.CA {
	ca, err := devca.New(devca.Options{Now: time.Now().Add(-time.Hour)})
	require.NoError(tb, err)
	return ca
}

// newWorldWith is newWorld with a given CA and extra config lines.
func newWorldWith(t *testing.T, ca *devca.CA, extraYAML string) *world {
	t.Helper()
	dir, config := writeConfig(t, ca, extraYAML)
	w := &world{t: t, dir: dir, ca: ca, tokens: mustTokens(t), config: config}
	w.proc = start(t, "serve", "--config", config)
	return w
}

// writeConfig writes, in a temp dir, a config for a temp database that
// trusts ca's root, and returns the dir and the config's path.
func writeConfig(tb testing.TB, ca *devca.CA, extraYAML string) (dir, config string) {
	tb.Helper()
	dir = tb.TempDir()
	root := filepath.Join(dir, "root.pem")
	require.NoError(tb, os.WriteFile(root, ca.RootPEM(), 0o600))
	config = filepath.Join(dir, "creditsd.yaml")
	require.NoError(tb, os.WriteFile(config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
database: %s
apple:
  bundle_id: %s
  environments: [Sandbox]
  root_certificates: [%s]
products:
  - product_id: %s
    credits: 10
    expires_after: 12mo
  - product_id: com.example.pro.monthly
    tier: pro
auth:
  hs256_secret: %s
%s`, filepath.Join(dir, "creditsd.db"), e2eBundle, root, e2ePack, e2eSecret, extraYAML)), 0o600))
	return dir, config
}

// process is a running creditsd and the address it logged.
type process struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
}

// start runs the binary with args and waits for its "listening" log line.
func start(t *testing.T, args ...string) *process {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...))
}

func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd}
	p.cmd.Env = append(os.Environ(), "CREDITSD_CONFIG=")
	out, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addr := make(chan string, 1)
	go p.readLog(out, addr)
	select {
	case p.addr = <-addr:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("creditsd did not log its address; it said:\n%s", p.log())
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *process) readLog(r io.Reader, addr chan<- string) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		p.mu.Lock()
		p.stderr.WriteString(line + "\n")
		p.mu.Unlock()
		if a, ok := listeningAddr(line); ok {
			addr <- a
		}
	}
}

// listeningAddr finds the bound address in the "listening" log line, in
// either log format (JSON, or text as the local profile writes it).
func listeningAddr(line string) (string, bool) {
	var rec struct{ Msg, Addr string }
	if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
		return rec.Addr, true
	}
	if !strings.Contains(line, "msg=listening ") {
		return "", false
	}
	for _, f := range strings.Fields(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return a, true
		}
	}
	return "", false
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and waits: a graceful shutdown exits 0.
func (p *process) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "creditsd exit; log:\n%s", p.log())
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("creditsd did not stop on SIGTERM")
	}
}

// restart stops the server and starts it again on the same database.
func (w *world) restart() {
	w.proc.stop(w.t)
	w.proc = start(w.t, "serve", "--config", w.config)
}

// token mints a bearer token the way the app's or a service's issuer would.
func (w *world) token(sub, scope string, ttl time.Duration) string {
	return mintHS256(w.t, e2eSecret, sub, scope, ttl)
}

func mintHS256(tb testing.TB, secret, sub, scope string, ttl time.Duration) string {
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Unix()}
	if scope != "" {
		claims["scope"] = scope
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	require.NoError(tb, err)
	return s
}

func hs256(t *testing.T, secret, sub string) string {
	return mintHS256(t, secret, sub, "", time.Minute)
}

func mustTokens(tb testing.TB) entitlements.TokenDeriver {
	tokens, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	require.NoError(tb, err)
	return tokens
}

var (
	specOnce sync.Once
	spec     *apiSpec
)

// checkDocumented holds every answer an end-to-end test gets to what
// openapi.yaml says the operation answers, so that the file cannot fall
// behind the program. Paths the file does not serve (404s of unknown
// routes, 405s) are TestDocsRoutes' concern; a HEAD has no body.
func (w *world) checkDocumented(method, path string, a answer) {
	w.t.Helper()
	specOnce.Do(func() { spec = readAPISpec(w.t) })
	if method == "HEAD" {
		return
	}
	if _, err := spec.operation(method, path); err != nil {
		return
	}
	ctype, _, _ := strings.Cut(a.header.Get("Content-Type"), ";")
	if err := spec.checkAnswer(method, path, a.status, ctype, a.raw); err != nil {
		w.t.Errorf("openapi.yaml does not describe an answer: %v", err)
	}
}

type answer struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (a answer) code() string { s, _ := a.body["code"].(string); return s }

// do sends a request with an optional bearer token and JSON body.
func (w *world) do(method, path, bearer string, body any) answer {
	w.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(w.t, err)
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, "http://"+w.proc.addr+path, r)
	require.NoError(w.t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	a := answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	_ = json.Unmarshal(raw, &a.body)
	w.checkDocumented(method, path, a)
	return a
}

// entitlement reads a user's entitlement with their own token.
func (w *world) entitlement(user string) entitlements.Entitlement {
	w.t.Helper()
	a := w.do("GET", "/v1/me/entitlement", w.token(user, "", time.Minute), nil)
	require.Equal(w.t, http.StatusOK, a.status, a.raw)
	var e entitlements.Entitlement
	require.NoError(w.t, json.Unmarshal([]byte(a.raw), &e))
	return e
}

// transaction signs a consumable purchase of the pack by user (token "" for
// a purchase made without an appAccountToken).
func (w *world) transaction(id, token string, bought time.Time, edit ...func(*devca.TransactionPayload)) string {
	p := devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, id, token, bought)
	for _, e := range edit {
		e(&p)
	}
	jws, err := w.ca.Sign(p)
	require.NoError(w.t, err)
	return jws
}

// notify sends Apple's webhook call for a notification around signedTx.
func (w *world) notify(uuid, typ, signedTx string) answer {
	return w.do("POST", "/v1/appstore/notifications", "", map[string]string{"signedPayload": w.signedNotification(uuid, typ, signedTx)})
}

// signedNotification is Apple's signedPayload for a notification around signedTx.
func (w *world) signedNotification(uuid, typ, signedTx string) string {
	jws, err := w.ca.Sign(devca.NotificationPayload{NotificationType: typ, NotificationUUID: uuid, Version: "2.0",
		SignedDate: devca.Millis(time.Now()),
		Data:       &devca.NotificationData{BundleID: e2eBundle, Environment: receipts.Sandbox, SignedTransactionInfo: signedTx}})
	require.NoError(w.t, err)
	return jws
}

// submit posts a signed transaction as user's app does.
func (w *world) submit(user, signedTx string) answer {
	return w.do("POST", "/v1/me/transactions", w.token(user, "", time.Minute), map[string]string{"signed_transaction": signedTx})
}
