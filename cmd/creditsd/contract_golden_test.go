package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts/devca"
)

var update = flag.Bool("update", false, "write the golden files of TestContractAnswers again")

// contractDir holds one file per exchange of TestContractAnswers: the
// request as sent and the answer as the program gave it.
const contractDir = "../../testdata/contract"

// TestContractAnswers drives the real program through every endpoint of
// CONTRACT.md, and the refusals its status codes name, in one story, and
// compares each exchange with its file in testdata/contract (world.do
// also holds each answer to openapi.yaml): the shapes
// the app, the backend and Apple rely on, readable in one place and held
// to the program. What changes from run to run is named instead: ids by
// their key and order of first sight, times by what they are.
//
//	go test ./cmd/creditsd -run TestContractAnswers -update
//
// writes the files again; read their diff before committing it.
func TestContractAnswers(t *testing.T) {
	w := newWorld(t)
	g := newGolden(t, w)
	now := time.Now().UTC()
	bought := now.Add(-time.Hour).Truncate(time.Millisecond)
	expires, _ := entitlements.DefaultExpiry.ExpiresAt(bought)
	g.times[bought.Format(time.RFC3339Nano)] = "<bought an hour ago>"
	g.times[expires.Format(time.RFC3339Nano)] = "<12 months after bought>"
	tomorrow := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	g.times[tomorrow.Format(time.RFC3339)] = "<next midnight UTC>"
	if time.Until(tomorrow) < time.Minute {
		t.Skip("too near midnight UTC: resets_at would move during the run")
	}

	alice := w.token("alice", "", time.Minute)
	backend := w.token("generation-backend", entitlements.ScopeSpend, time.Minute)
	admin := w.token("ops", entitlements.ScopeAdmin, time.Minute)
	pack := w.transaction("2000000000000001", w.tokens.Token("alice"), bought)

	g.do("01-entitlement-new-user", "GET", "/v1/me/entitlement", alice, nil)
	g.do("02-transaction-claimed", "POST", "/v1/me/transactions", alice, map[string]string{"signed_transaction": pack})
	g.do("03-transaction-again", "POST", "/v1/me/transactions", alice, map[string]string{"signed_transaction": pack})
	g.webhook("04-webhook-same-purchase", "8d3f7a52-0b6e-4c1d-9e8f-7a6b5c4d3e2f", "ONE_TIME_CHARGE", pack)
	g.do("05-entitlement-by-backend", "GET", "/v1/users/alice/entitlement", backend, nil)

	video := map[string]any{"idempotency_key": "gen-1", "product": "sora",
		"generation": map[string]any{"seconds": 10, "resolution": "1080p"}}
	g.do("06-spend-generation", "POST", "/v1/users/alice/spends", backend, video)
	g.do("07-spend-replayed", "POST", "/v1/users/alice/spends", backend, video)
	g.do("08-spend-key-reused", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-1", "product": "sora", "credits": 9})
	g.do("09-spend-allowance-then-lot", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-2", "product": "codex", "credits": 25})
	g.do("10-spend-refused", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-3", "product": "sora", "credits": 100})
	g.do("11-reverse", "POST", "/v1/users/alice/spends/"+g.id("spend_id", 2)+"/reverse", backend, nil)
	g.do("12-reverse-again", "POST", "/v1/users/alice/spends/"+g.id("spend_id", 2)+"/reverse", backend, nil)

	grant := map[string]any{"idempotency_key": "support-42", "credits": 5, "reason": "apology for an outage"}
	g.do("13-admin-grant", "POST", "/v1/users/alice/grants", admin, grant)
	g.do("14-admin-grant-replayed", "POST", "/v1/users/alice/grants", admin, grant)
	g.do("15-spend-from-lots", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-4", "product": "sora", "credits": 30})
	g.webhook("16-webhook-refund", "1c2b3a49-5867-4f3e-8d2c-1b0a9f8e7d6c", "REFUND",
		w.transaction("2000000000000001", w.tokens.Token("alice"), bought, revokedAt(now.Add(-time.Minute))))
	g.do("17-entitlement-in-debt", "GET", "/v1/me/entitlement", alice, nil)
	g.do("18-spend-refused-for-debt", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-5", "product": "sora", "credits": 1})
	g.do("19-ledger", "GET", "/v1/users/alice/ledger", admin, nil)
	g.do("20-ledger-page", "GET", "/v1/users/alice/ledger?limit=2", admin, nil)
	g.do("21-ledger-next-page", "GET", "/v1/users/alice/ledger?limit=2&cursor="+g.last["next_cursor"], admin, nil)

	g.do("22-no-token", "GET", "/v1/me/entitlement", "", nil)
	g.do("23-expired-token", "GET", "/v1/me/entitlement", w.token("alice", "", -time.Minute), nil)
	g.do("24-another-users-entitlement", "GET", "/v1/users/bob/entitlement", alice, nil)
	g.do("25-spend-without-scope", "POST", "/v1/users/alice/spends", admin,
		map[string]any{"idempotency_key": "gen-6", "product": "sora", "credits": 1})
	g.do("26-spend-unknown-product", "POST", "/v1/users/alice/spends", backend,
		map[string]any{"idempotency_key": "gen-7", "product": "dalle", "credits": 1})
	g.do("27-spend-malformed", "POST", "/v1/users/alice/spends", backend, `{"idempotency_key": "gen-8",`)
	g.do("28-transaction-of-another-user", "POST", "/v1/me/transactions", w.token("bob", "", time.Minute),
		map[string]string{"signed_transaction": pack})
	g.do("29-transaction-not-sold", "POST", "/v1/me/transactions", alice, map[string]string{"signed_transaction": w.transaction(
		"2000000000000002", w.tokens.Token("alice"), bought, withProduct("com.example.sora.credits1000"))})
	g.do("30-transaction-forged", "POST", "/v1/me/transactions", alice,
		map[string]string{"signed_transaction": pack[:len(pack)-8] + "AAAAAAAA"})
	g.do("31-webhook-not-verified", "POST", "/v1/appstore/notifications", "", map[string]string{"signedPayload": "x.y.z"})
	g.do("32-body-too-large", "POST", "/v1/users/alice/grants", admin,
		`{"idempotency_key": "big", "credits": 1, "reason": "`+strings.Repeat("a", 64<<10)+`"}`)
	g.do("33-healthz", "GET", "/healthz", "", nil)
	g.do("34-readyz", "GET", "/readyz", "", nil)
	g.do("35-tier-set-by-admin", "PUT", "/v1/users/bob/tier", admin, map[string]any{"tier": "pro", "reason": "press account"})
	g.finish()
}

func revokedAt(at time.Time) func(*devca.TransactionPayload) {
	return func(p *devca.TransactionPayload) {
		p.RevocationDate = at.UnixMilli()
		p.RevocationReason = new(int)
		p.SignedDate = at.UnixMilli() // Apple signs the refunded transaction anew
	}
}

func withProduct(id string) func(*devca.TransactionPayload) {
	return func(p *devca.TransactionPayload) { p.ProductID = id }
}

// golden records the exchanges of one run and compares them with their
// files, naming what changes between runs.
type golden struct {
	t     *testing.T
	w     *world
	ids   map[string]string   // a server's id → "<key N>"
	byKey map[string][]string // key → its ids in order of first sight
	times map[string]string   // an RFC 3339 time → its name
	last  map[string]string   // a key → the value it last had, as sent
	names []string            // the files this run wrote or compared
}

func newGolden(t *testing.T, w *world) *golden {
	return &golden{t: t, w: w, ids: map[string]string{}, byKey: map[string][]string{}, times: map[string]string{}, last: map[string]string{}}
}

// idKeys are the members whose values the server makes up.
var idKeys = map[string]bool{"lot_id": true, "spend_id": true, "entry_id": true, "reversal_id": true, "next_cursor": true}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)

// id is the n-th (from 1) id seen under key: the run refers to ids the
// server made up by the order they appeared.
func (g *golden) id(key string, n int) string {
	g.t.Helper()
	require.Greater(g.t, len(g.byKey[key]), n-1, "no %s number %d yet", key, n)
	return g.byKey[key][n-1]
}

func (g *golden) webhook(name, uuid, typ, signedTx string) {
	g.do(name, "POST", "/v1/appstore/notifications", "",
		map[string]string{"signedPayload": g.w.signedNotification(uuid, typ, signedTx)})
}

// do sends one request and checks its exchange against testdata/contract/name.
func (g *golden) do(name, method, path, bearer string, body any) {
	g.t.Helper()
	a := g.w.do(method, path, bearer, body)
	var out strings.Builder
	fmt.Fprintf(&out, "%s %s\n", method, g.named(path))
	if bearer != "" {
		fmt.Fprintf(&out, "Authorization: Bearer <%s>\n", tokenLabel(g.t, bearer))
	}
	if body != nil {
		fmt.Fprintf(&out, "\n%s\n", g.requestBody(body))
	}
	fmt.Fprintf(&out, "\n%d %s\n", a.status, a.header.Get("Content-Type"))
	if a.raw != "" {
		v, err := readOrdered([]byte(a.raw))
		require.NoError(g.t, err, "%s: the answer is not JSON: %s", name, a.raw)
		fmt.Fprintf(&out, "\n%s\n", g.indent(g.normalize("", v)))
	}
	g.check(name+".http", out.String())
}

// requestBody is the body as sent, shortened where it is a JWS or padding:
// the files show the shape of the request, not its bytes.
func (g *golden) requestBody(body any) string {
	if s, ok := body.(string); ok {
		if len(s) > 200 {
			return s[:60] + fmt.Sprintf("… (%d bytes)", len(s))
		}
		return s
	}
	b, err := json.Marshal(body)
	require.NoError(g.t, err)
	var v any
	require.NoError(g.t, json.Unmarshal(b, &v))
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			if s, ok := x.(string); ok && strings.Count(s, ".") == 2 && len(s) > 200 {
				m[k] = "<JWS>"
			}
		}
	}
	return g.indent(v)
}

// normalize names the server's ids and the times in v.
func (g *golden) normalize(key string, v any) any {
	switch x := v.(type) {
	case object:
		for i, m := range x {
			x[i].value = g.normalize(m.key, m.value)
		}
	case []any:
		for i, y := range x {
			x[i] = g.normalize(key, y)
		}
	case string:
		g.last[key] = x
		if idKeys[key] {
			return g.name(key, x)
		}
		if rfc3339.MatchString(x) {
			if n, ok := g.times[x]; ok {
				return n
			}
			return "<time>"
		}
		if n, ok := g.ids[x]; ok {
			return n
		}
	}
	return v
}

func (g *golden) name(key, id string) string {
	if n, ok := g.ids[id]; ok {
		return n
	}
	g.byKey[key] = append(g.byKey[key], id)
	n := fmt.Sprintf("<%s %d>", key, len(g.byKey[key]))
	g.ids[id] = n
	return n
}

var pathID = regexp.MustCompile(`(/|cursor=)([^/?&]+)`)

// named replaces the parts of path that are ids the run has seen: its
// segments and its cursor.
func (g *golden) named(path string) string {
	return pathID.ReplaceAllStringFunc(path, func(s string) string {
		m := pathID.FindStringSubmatch(s)
		if n, ok := g.ids[m[2]]; ok {
			return m[1] + n
		}
		return s
	})
}

func (g *golden) indent(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	require.NoError(g.t, enc.Encode(v))
	return strings.TrimSuffix(b.String(), "\n")
}

func (g *golden) check(file, got string) {
	g.t.Helper()
	g.names = append(g.names, file)
	path := filepath.Join(contractDir, file)
	if *update {
		require.NoError(g.t, os.MkdirAll(contractDir, 0o755))
		require.NoError(g.t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(g.t, err, "run with -update to write it")
	require.Equal(g.t, string(want), got, "%s: the program's answer changed (-update writes it again)", file)
}

// finish checks that the folder holds this run's files and no others, so a
// step renamed or dropped leaves no stale file behind.
func (g *golden) finish() {
	g.t.Helper()
	entries, err := os.ReadDir(contractDir)
	require.NoError(g.t, err)
	var have []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".http") {
			have = append(have, e.Name())
		}
	}
	if *update {
		for _, f := range have {
			if !slices.Contains(g.names, f) {
				require.NoError(g.t, os.Remove(filepath.Join(contractDir, f)))
			}
		}
		return
	}
	require.ElementsMatch(g.t, g.names, have)
}

// object is a JSON object with its members in the order they were written:
// the files show an answer as the program writes it.
type object []member

type member struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := marshalText(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshalText(m.value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// marshalText is json.Marshal without its HTML escapes, which would
// hide the names' angle brackets.
func marshalText(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// readOrdered decodes JSON as json.Unmarshal into any does, except that
// objects keep their order and numbers their text.
func readOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readValue(dec)
	if err == nil && dec.More() {
		err = fmt.Errorf("more than one value")
	}
	return v, err
}

func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{k.(string), v})
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return tok, nil
}

// tokenLabel says whose token a bearer is, from its claims.
func tokenLabel(t *testing.T, bearer string) string {
	parts := strings.Split(bearer, ".")
	require.Len(t, parts, 3)
	var claims struct{ Sub, Scope string }
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &claims))
	if claims.Scope != "" {
		return fmt.Sprintf("service token: sub %s, scope %s", claims.Sub, claims.Scope)
	}
	return "user token: sub " + claims.Sub
}
