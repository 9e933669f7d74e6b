package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// FuzzAPI sends arbitrary requests (method, request target, bearer, body)
// to the real program's router, wired as serve wires it on a temp database,
// and holds every answer to the contract's error rules: nothing panics,
// nothing is 5xx (with Apple's API unconfigured and the database healthy,
// the contract leaves no 5xx reachable: the webhook's "could not record it
// durably", /readyz's "database unreachable" and app_store_unavailable
// cannot happen), every 4xx is problem+json with a string code and its own
// status, every 2xx body is JSON, never empty (the Prometheus text of
// /metrics aside), and every 3xx says where to go.
func FuzzAPI(f *testing.F) {
	s := newFuzzServer(f)
	for _, sd := range apiSeeds() {
		f.Add(sd.method, sd.target, sd.auth, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, method byte, target string, auth byte, body []byte) {
		req, ok := s.request(method, target, auth, body)
		if !ok {
			t.Skip("not a request the server could read")
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		checkAnswer(t, req, rec, s.log.last())
	})
}

// fuzzMethods are the contract's methods, the router's PUT and a few the
// router has no route for. A seed's method byte indexes them.
var fuzzMethods = []string{"GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT"}

const (
	mGet byte = iota
	mPost
	mPut
	mHead
	mDelete
	mPatch
	mOptions
)

// Bearers a seed's auth byte picks. A service token is one holding a
// credits: scope; authNoScope holds one that grants nothing.
const (
	authNone byte = iota
	authGarbage
	authUser    // alice
	authService // credits:spend and credits:admin
	authNoScope
)

// fuzzServer is the app, opened once per fuzz process, and what a request
// needs from it.
type fuzzServer struct {
	handler http.Handler
	bearers []string // by auth byte
	expand  *strings.Replacer
	log     *lastWrite
}

func newFuzzServer(f *testing.F) *fuzzServer {
	ca := newCA(f)
	_, config := writeConfig(f, ca, "")
	s := &fuzzServer{log: &lastWrite{}}
	a, err := openApp(context.Background(), config, func(string) string { return "" }, s.log)
	require.NoError(f, err)
	f.Cleanup(func() { require.NoError(f, a.close()) })
	s.handler = a.routes()
	s.bearers = []string{"", "not.a.jwt",
		mintHS256(f, e2eSecret, "alice", "", time.Hour),
		mintHS256(f, e2eSecret, "generation-backend", entitlements.ScopeSpend+" "+entitlements.ScopeAdmin, time.Hour),
		mintHS256(f, e2eSecret, "generation-backend", "credits:read", time.Hour)}
	s.expand = strings.NewReplacer(s.placeholders(f, ca)...)
	return s
}

// placeholders are what the seeds' {names} stand for in this process: a
// spend of alice's, and JWSs signed by this process's CA. Every fuzz worker
// opens its own app with its own CA and ids, so a seed cannot carry them;
// mutations that keep a {name} whole still reach what lies behind a valid
// signature or a real spend.
func (s *fuzzServer) placeholders(f *testing.F, ca *devca.CA) []string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/users/alice/spends", strings.NewReader(`{"idempotency_key":"seed","product":"sora","credits":1}`))
	req.Header.Set("Authorization", "Bearer "+s.bearers[authService])
	s.handler.ServeHTTP(rec, req)
	require.Equal(f, http.StatusCreated, rec.Code, rec.Body.String())
	var spend struct {
		SpendID string `json:"spend_id"`
	}
	require.NoError(f, json.Unmarshal(rec.Body.Bytes(), &spend))

	now, alice := time.Now(), mustTokens(f).Token("alice")
	sign := func(v any) string {
		jws, err := ca.Sign(v)
		require.NoError(f, err)
		return jws
	}
	tx := func(id, bundle, token string, edit func(*devca.TransactionPayload)) string {
		p := devca.Consumable(bundle, receipts.Sandbox, e2ePack, id, token, now)
		if edit != nil {
			edit(&p)
		}
		return sign(p)
	}
	notification := func(uuid, typ, signedTx string) string {
		return sign(devca.NotificationPayload{NotificationType: typ, NotificationUUID: uuid, Version: "2.0", SignedDate: devca.Millis(now),
			Data: &devca.NotificationData{BundleID: e2eBundle, Environment: receipts.Sandbox, SignedTransactionInfo: signedTx}})
	}
	refunded := func(p *devca.TransactionPayload) { p.RevocationDate = devca.Millis(now) }
	return []string{
		"{spend}", spend.SpendID,
		"{tx}", tx("2000000000000001", e2eBundle, alice, nil),
		"{tx-anon}", tx("2000000000000002", e2eBundle, "", nil),
		"{tx-foreign}", tx("2000000000000003", "com.example.other", alice, nil),
		"{tx-sub}", tx("2000000000000004", e2eBundle, alice, func(p *devca.TransactionPayload) {
			p.ProductID, p.Type, p.ExpiresDate = "com.example.pro.monthly", "Auto-Renewable Subscription", devca.Millis(now.AddDate(0, 1, 0))
		}),
		"{purchase}", notification("9a1c1c3e-0000-4000-8000-00000000f001", "ONE_TIME_CHARGE", tx("2000000000000005", e2eBundle, alice, nil)),
		"{refund}", notification("9a1c1c3e-0000-4000-8000-00000000f002", "REFUND", tx("2000000000000001", e2eBundle, alice, refunded)),
	}
}

// maxFuzzBody is past the server's 64 KiB limit, so 413 stays reachable.
const maxFuzzBody = entitlements.MaxBodyBytes + 1<<10

// request builds the request, or reports that no server could receive it:
// a target that is not an origin-form path, or holds bytes a request line
// cannot carry, or that net/http's server would refuse.
func (s *fuzzServer) request(method byte, target string, auth byte, body []byte) (*http.Request, bool) {
	if len(target) > 4<<10 || len(body) > maxFuzzBody || !strings.HasPrefix(target, "/") {
		return nil, false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f || c == '#' {
			return nil, false
		}
	}
	if _, err := url.ParseRequestURI(target); err != nil {
		return nil, false
	}
	target, body = s.expand.Replace(target), []byte(s.expand.Replace(string(body)))
	req, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://creditsd.test"+target, bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	req.RequestURI = target
	req.Header.Set("Content-Type", "application/json")
	if b := s.bearers[int(auth)%len(s.bearers)]; b != "" {
		req.Header.Set("Authorization", "Bearer "+b)
	}
	return req, true
}

// checkAnswer holds one answer to the contract's rules.
func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder, lastLog string) {
	status, body := rec.Code, rec.Body.Bytes()
	ctype, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	what := fmt.Sprintf("%s %s (route %q) answered %d %s: %.500s", req.Method, req.URL.RequestURI(), req.Pattern, status, ctype, body)
	switch {
	case status >= 500:
		t.Fatalf("%s\nlast log: %s", what, lastLog)
	case status >= 400:
		require.Equal(t, "application/problem+json", ctype, what)
		var p map[string]any
		require.NoError(t, json.Unmarshal(body, &p), what)
		code, _ := p["code"].(string)
		require.NotEmpty(t, code, "no string code: %s", what)
		require.Equal(t, float64(status), p["status"], "problem's status: %s", what)
	case status >= 300:
		require.NotEmpty(t, rec.Header().Get("Location"), what)
	case status >= 200:
		if strings.HasSuffix(req.Pattern, " /metrics") {
			return
		}
		require.Equal(t, "application/json", ctype, what)
		require.True(t, json.Valid(body), "not JSON: %s", what)
	default:
		t.Fatalf("%s", what)
	}
}

// lastWrite keeps the app's last log record, for a failure's message.
type lastWrite struct {
	mu  sync.Mutex
	buf []byte
}

func (w *lastWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf[:0], p...)
	return len(p), nil
}

func (w *lastWrite) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// apiSeed is one corpus entry: fuzzMethods[method], a request target, the
// bearers[auth], and a body that may hold placeholders.
type apiSeed struct {
	method byte
	target string
	auth   byte
	body   string
}

// apiSeeds are every endpoint of the contract with realistic good and bad
// bodies, odd user and spend ids, and each bearer.
func apiSeeds() []apiSeed {
	seeds := []apiSeed{
		{mGet, "/healthz", authNone, ""}, {mGet, "/readyz", authNone, ""}, {mGet, "/metrics", authNone, ""},
		{mHead, "/healthz", authNone, ""}, {mPost, "/healthz", authNone, "{}"}, {mGet, "/", authNone, ""},
		{mGet, "/v1", authUser, ""}, {mGet, "/v1//me/entitlement", authUser, ""}, {mGet, "/v1/me/../me/entitlement", authUser, ""},
		{mOptions, "/v1/me/entitlement", authUser, ""}, {mDelete, "/v1/users/alice/spends/{spend}", authService, ""},
		{mPatch, "/v1/users/alice/grants", authService, "{}"}, {byte(len(fuzzMethods) - 1), "/v1/me/entitlement", authUser, ""},
	}
	for auth := authNone; auth <= authNoScope; auth++ {
		seeds = append(seeds, apiSeed{mGet, "/v1/me/entitlement", auth, ""}, apiSeed{mGet, "/v1/users/alice/entitlement", auth, ""},
			apiSeed{mPost, "/v1/me/transactions", auth, `{"signed_transaction":"{tx}"}`},
			apiSeed{mPost, "/v1/users/alice/spends", auth, `{"idempotency_key":"a1","product":"sora","credits":1}`},
			apiSeed{mPost, "/v1/users/alice/spends/{spend}/reverse", auth, ""},
			apiSeed{mPost, "/v1/users/alice/grants", auth, `{"idempotency_key":"g1","credits":5,"reason":"goodwill"}`},
			apiSeed{mGet, "/v1/users/alice/ledger", auth, ""})
	}
	seeds = append(seeds, webhookSeeds()...)
	seeds = append(seeds, transactionSeeds()...)
	seeds = append(seeds, userIDSeeds()...)
	seeds = append(seeds, spendSeeds()...)
	return append(seeds, adminSeeds()...)
}

func webhookSeeds() []apiSeed {
	var seeds []apiSeed
	for _, body := range []string{`{"signedPayload":"{purchase}"}`, `{"signedPayload":"{refund}"}`,
		`{"signedPayload":"{tx}"}`, `{"signedPayload":"a.b.c"}`, `{"signedPayload":""}`, `{"signedPayload":null}`,
		`{"signedPayload":1e400}`, `{}`, ``, `[]`, `null`, `{"signedPayload":"{purchase}","extra":1}`,
		`{"signedPayload":"{purchase}"} {}`, `{"signedPayload":"{purchase}","signedPayload":"a.b.c"}`,
		"{\"signedPayload\":\"\xff\xfe\"}", `{"signedPayload":"{purchase}"`,
		`{"signedPayload":"` + strings.Repeat("A", entitlements.MaxBodyBytes) + `"}`,
	} {
		seeds = append(seeds, apiSeed{mPost, "/v1/appstore/notifications", authNone, body})
	}
	return append(seeds, apiSeed{mGet, "/v1/appstore/notifications", authNone, ""})
}

func transactionSeeds() []apiSeed {
	var seeds []apiSeed
	for _, body := range []string{`{"signed_transaction":"{tx}"}`, `{"signed_transaction":"{tx-anon}"}`,
		`{"signed_transaction":"{tx-foreign}"}`, `{"signed_transaction":"{tx-sub}"}`, `{"signed_transaction":"garbage"}`,
		`{"signed_transaction":"eyJhbGciOiJFUzI1NiJ9.e30.AA"}`, `{"signed_transaction":"{purchase}"}`,
		`{"app_receipt":"bm90IGEgcmVjZWlwdA=="}`, `{"signed_transaction":"{tx}","app_receipt":"bm90"}`,
		`{"signed_transaction":123}`, `{"signed_transaction":{"nested":[1,{"a":null}]}}`, `{"signed_transaction":"{tx}","x":1}`,
		`{"signed_transaction":"{tx}"}{"signed_transaction":"{tx}"}`, `{}`, ``, `"{tx}"`,
		"{\"signed_transaction\":\"\xc3\x28\"}",
	} {
		seeds = append(seeds, apiSeed{mPost, "/v1/me/transactions", authUser, body})
	}
	return seeds
}

// userIDSeeds name users the contract allows and ones it does not.
func userIDSeeds() []apiSeed {
	var seeds []apiSeed
	for _, id := range []string{"alice", "bob", "a", "a:b@c.d_e-f", strings.Repeat("x", 128), strings.Repeat("x", 129),
		"x%2Fy", "%00", "%FF", "al%20ice", "..", ".", "%E2%80%AE", "%", "al;ice", "alice?x=1", "ü"} {
		seeds = append(seeds, apiSeed{mGet, "/v1/users/" + id + "/entitlement", authService, ""},
			apiSeed{mPost, "/v1/users/" + id + "/spends", authService, `{"idempotency_key":"u1","product":"codex","credits":1}`},
			apiSeed{mPost, "/v1/users/" + id + "/spends/{spend}/reverse", authService, ""},
			apiSeed{mPut, "/v1/users/" + id + "/tier", authService, `{"tier":"pro","reason":"web"}`})
	}
	for _, id := range []string{"nope", "sp_", "%00", "%2F", strings.Repeat("s", 300), "{spend}x", "{spend}%00"} {
		seeds = append(seeds, apiSeed{mPost, "/v1/users/alice/spends/" + id + "/reverse", authService, ""})
	}
	return append(seeds, apiSeed{mPost, "/v1/users/bob/spends/{spend}/reverse", authService, ""},
		apiSeed{mPost, "/v1/users/alice/spends/{spend}/reverse", authService, `{"reason":"failed"}`},
		apiSeed{mPost, "/v1/users/alice/spends/{spend}/reverse", authService, `garbage`})
}

func spendSeeds() []apiSeed {
	var seeds []apiSeed
	for _, body := range []string{
		`{"idempotency_key":"k1","product":"sora","credits":1}`, `{"idempotency_key":"k1","product":"sora","credits":2}`,
		`{"idempotency_key":"k2","product":"sora","credits":0}`, `{"idempotency_key":"k2","product":"sora","credits":-1}`,
		`{"idempotency_key":"k2","product":"sora","credits":9223372036854775807}`,
		`{"idempotency_key":"k2","product":"sora","credits":9223372036854775808}`,
		`{"idempotency_key":"k2","product":"sora","credits":1e400}`, `{"idempotency_key":"k2","product":"sora","credits":1.5}`,
		`{"idempotency_key":"k2","product":"sora","credits":"1"}`, `{"idempotency_key":"k2","product":"sora","credits":null}`,
		`{"idempotency_key":"k2","product":"sora","credits":{"n":[1,[2,{"x":null}]]}}`, `{"idempotency_key":"k2","product":"sora","credits":[]}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":10,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":0.0001,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":-1,"resolution":"480p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":1e308,"resolution":"1080p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":10.000000000000002,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":1e1,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":1e400,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":-1e400,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":1e-400,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":1e999999999999999999,"resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"codex","generation":{"seconds":18446744073709551.617,"resolution":"standard"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":"10","resolution":"720p"}}`,
		`{"idempotency_key":"k3","product":"sora","generation":{"seconds":10,"resolution":"8k"}}`,
		`{"idempotency_key":"k4","product":"codex","generation":{"seconds":3600,"resolution":"standard"}}`,
		`{"idempotency_key":"k5","product":"sora","credits":1,"generation":{"seconds":10,"resolution":"720p"}}`,
		`{"idempotency_key":"k5","product":"sora"}`, `{"idempotency_key":"k5","product":"gpt","credits":1}`,
		`{"idempotency_key":"k5","product":"","credits":1}`, `{"idempotency_key":"k5","product":"sora","credits":1,"extra":true}`,
		`{"idempotency_key":{"a":{"b":[1,2,{"c":null}]}},"product":"sora","credits":1}`,
		`{"idempotency_key":"k6","product":"sora","credits":1}{"idempotency_key":"k7"}`,
		`{"idempotency_key":"k6","product":"sora","credits":1} trailing`, ``, `{`, `null`, `[]`, `"x"`,
		`{"idempotency_key":"k8","product":"sora","credits":1,"credits":100000000}`,
		"{\"idempotency_key\":\"k\xff\",\"product\":\"sora\",\"credits\":1}",
		"{\"idempotency_key\":\"k9\",\"product\":\"sora\xff\",\"credits\":1}",
		`{"idempotency_key":"has space","product":"sora","credits":1}`, `{"idempotency_key":"","product":"sora","credits":1}`,
		`{"idempotency_key":"` + strings.Repeat("k", 256) + `","product":"sora","credits":1}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	} {
		seeds = append(seeds, apiSeed{mPost, "/v1/users/alice/spends", authService, body})
	}
	return append(seeds, apiSeed{mPost, "/v1/users/bob/spends", authService, `{"idempotency_key":"b1","product":"sora","credits":100000}`})
}

// adminSeeds are grants, ledger pages and tier overrides.
func adminSeeds() []apiSeed {
	var seeds []apiSeed
	for _, body := range []string{
		`{"idempotency_key":"g1","credits":100,"reason":"goodwill"}`, `{"idempotency_key":"g1","credits":101,"reason":"goodwill"}`,
		`{"idempotency_key":"g2","credits":10,"expires_at":"2099-01-01T00:00:00Z","reason":"promo"}`,
		`{"idempotency_key":"g3","credits":10,"expires_at":"2000-01-01T00:00:00Z","reason":"past"}`,
		`{"idempotency_key":"g4","credits":10,"expires_at":"9999-12-31T23:59:59.999999999+14:00","reason":"far"}`,
		`{"idempotency_key":"g5","credits":10,"expires_at":"10000-01-01T00:00:00Z","reason":"x"}`,
		`{"idempotency_key":"g8","credits":10,"expires_at":"9999-12-31T23:00:00-05:00","reason":"x"}`, // year 10000 in UTC
		`{"idempotency_key":"g5","credits":10,"expires_at":"tomorrow","reason":"x"}`,
		`{"idempotency_key":"g5","credits":10,"expires_at":null,"reason":"x"}`, `{"idempotency_key":"g5","credits":10,"reason":""}`,
		`{"idempotency_key":"g5","credits":10,"reason":"` + strings.Repeat("é", 501) + `"}`,
		`{"idempotency_key":"g5","credits":1e400,"reason":"x"}`, `{"idempotency_key":"g5","credits":-5,"reason":"x"}`,
		`{"idempotency_key":"g5","credits":9223372036854775807,"reason":"x"}`, "{\"idempotency_key\":\"g6\",\"credits\":1,\"reason\":\"\xff\"}",
		`{"idempotency_key":"g7","credits":1,"reason":"x","lot_id":"lot_1"}`, ``,
	} {
		seeds = append(seeds, apiSeed{mPost, "/v1/users/alice/grants", authService, body})
	}
	for _, q := range []string{"", "?cursor=1", "?cursor=-1", "?cursor=9223372036854775807", "?cursor=99999999999999999999",
		"?cursor=abc", "?limit=0", "?limit=1", "?limit=500", "?limit=501", "?cursor=1&cursor=2", "?%zz", "?limit=1e3"} {
		seeds = append(seeds, apiSeed{mGet, "/v1/users/alice/ledger" + q, authService, ""})
	}
	for _, body := range []string{`{"tier":"pro","expires_at":"2099-01-01T00:00:00Z","reason":"web"}`, `{"tier":"free","reason":"x"}`,
		`{"tier":"gold","reason":"x"}`, `{"tier":"pro","expires_at":"9999-12-31T23:59:59Z","reason":"x"}`,
		`{"tier":"pro","expires_at":"9999-12-31T23:00:00-05:00","reason":"x"}`,
		`{"tier":"pro","expires_at":"2000-01-01T00:00:00Z","reason":"x"}`, `{"tier":"pro"}`} {
		seeds = append(seeds, apiSeed{mPut, "/v1/users/alice/tier", authService, body})
	}
	return seeds
}
