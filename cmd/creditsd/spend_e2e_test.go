package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts/devca"
)

// backend is the generation backend's service token.
func (w *world) backend() string { return w.token("generation-backend", "credits:spend", time.Hour) }

func (w *world) admin() string { return w.token("ops", "credits:admin", time.Hour) }

func (w *world) spend(user string, body any) answer {
	return w.do("POST", "/v1/users/"+user+"/spends", w.backend(), body)
}

func num(a answer, path ...string) int64 {
	var v any = a.body
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	return int64(v.(float64))
}

func TestEndToEndSpendPath(t *testing.T) {
	w := newWorld(t)
	bought := time.Now().Add(-time.Minute)
	w.entitlement("alice")
	require.Equal(t, http.StatusOK, w.notify("9a1c1c3e-0000-4000-8000-000000000001", "ONE_TIME_CHARGE",
		w.transaction("3000001", w.tokens.Token("alice"), bought)).status)

	// A 10 s 1080p Sora video costs 8 credits, from today's allowance first.
	gen := map[string]any{"idempotency_key": "gen-1", "product": "sora", "generation": map[string]any{"seconds": 10, "resolution": "1080p"}}
	a := w.spend("alice", gen)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, int64(8), num(a, "credits"))
	require.Equal(t, int64(8), num(a, "from_allowance"))
	require.Equal(t, int64(22), num(a, "entitlement", "allowance", "remaining"))
	spendID := a.body["spend_id"].(string)

	replay := w.spend("alice", gen)
	require.Equal(t, http.StatusCreated, replay.status, "a replay answers what the first call answered")
	for _, k := range []string{"spend_id", "credits", "from_allowance", "from_lots", "created_at", "product"} {
		require.Equal(t, a.body[k], replay.body[k], "the replay's %s", k)
	}
	require.Equal(t, int64(22), num(replay, "entitlement", "allowance", "remaining"), "and changes nothing")
	require.NotContains(t, replay.body, "reversal_id", "a spend not reversed names no reversal")
	gen2 := map[string]any{"idempotency_key": "gen-1", "product": "sora", "credits": 3}
	require.Equal(t, http.StatusConflict, w.spend("alice", gen2).status)

	// Past the allowance, lots pay; spendable counts both.
	a = w.spend("alice", map[string]any{"idempotency_key": "c-1", "product": "codex", "credits": 25})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, int64(22), num(a, "from_allowance"))
	require.Equal(t, int64(7), num(a, "entitlement", "credits", "balance"))
	require.Equal(t, int64(7), num(a, "entitlement", "spendable"))

	// More than spendable is 402, and the key stays free.
	big := map[string]any{"idempotency_key": "c-2", "product": "codex", "credits": 8}
	a = w.spend("alice", big)
	require.Equal(t, http.StatusPaymentRequired, a.status)
	require.Equal(t, "insufficient_credits", a.code())

	// A failed generation is reversed: its allowance part comes back today.
	rev := w.do("POST", "/v1/users/alice/spends/"+spendID+"/reverse", w.backend(), nil)
	require.Equal(t, http.StatusCreated, rev.status, rev.raw)
	require.Equal(t, int64(8), num(rev, "allowance_returned"))
	again := w.do("POST", "/v1/users/alice/spends/"+spendID+"/reverse", w.backend(), nil)
	require.Equal(t, http.StatusOK, again.status, "a repeat answers 200")
	require.Equal(t, rev.body["reversal_id"], again.body["reversal_id"])
	require.Equal(t, int64(8+7), num(again, "entitlement", "spendable"), "and changes nothing")
	replay = w.spend("alice", gen)
	require.Equal(t, http.StatusCreated, replay.status, replay.raw)
	require.Equal(t, rev.body["reversal_id"], replay.body["reversal_id"], "a replay after the reversal names it: the credits are back")
	require.Equal(t, int64(8+7), num(replay, "entitlement", "spendable"), "and charges nothing again")
	require.Equal(t, http.StatusCreated, w.spend("alice", big).status, "the refused key now succeeds")

	// A refund of the pack, now partly spent, leaves debt and blocks spending.
	refund := w.transaction("3000001", w.tokens.Token("alice"), bought, func(p *devca.TransactionPayload) {
		p.RevocationDate, p.SignedDate = devca.Millis(time.Now()), devca.Millis(time.Now())
	})
	require.Equal(t, http.StatusOK, w.notify("9a1c1c3e-0000-4000-8000-000000000002", "REFUND", refund).status)
	e := w.entitlement("alice")
	require.Equal(t, int64(3), e.Credits.Debt)
	require.Equal(t, int64(0), e.Spendable)
	a = w.spend("alice", map[string]any{"idempotency_key": "c-3", "product": "codex", "credits": 1})
	require.Equal(t, http.StatusPaymentRequired, a.status)
	require.Equal(t, "debt_outstanding", a.code())

	// An admin grant pays the debt first; the ledger tells the whole story.
	g := w.do("POST", "/v1/users/alice/grants", w.admin(), map[string]any{"idempotency_key": "goodwill-1", "credits": 5, "reason": "support ticket 42"})
	require.Equal(t, http.StatusCreated, g.status, g.raw)
	require.Equal(t, int64(0), num(g, "entitlement", "credits", "debt"))
	require.Equal(t, int64(2), num(g, "entitlement", "credits", "balance"))

	l := w.do("GET", "/v1/users/alice/ledger?limit=3", w.admin(), nil)
	require.Equal(t, http.StatusOK, l.status, l.raw)
	entries := l.body["entries"].([]any)
	require.Len(t, entries, 3)
	require.Equal(t, "debt_paid", entries[0].(map[string]any)["kind"], "newest first")
	require.Equal(t, "service:ops", entries[1].(map[string]any)["actor"])
	next := l.body["next_cursor"].(string)
	l2 := w.do("GET", "/v1/users/alice/ledger?limit=100&cursor="+next, w.admin(), nil)
	require.Equal(t, http.StatusOK, l2.status)
	require.Nil(t, l2.body["next_cursor"])
	kinds := map[string]bool{}
	for _, e := range append(entries, l2.body["entries"].([]any)...) {
		kinds[e.(map[string]any)["kind"].(string)] = true
	}
	for _, k := range []string{"grant", "spend", "reverse", "refund", "debt", "admin_grant", "debt_paid"} {
		require.True(t, kinds[k], "the ledger records %s", k)
	}

	m := w.do("GET", "/metrics", "", nil)
	require.Contains(t, m.raw, `creditsd_spends_refused_total{code="insufficient_credits"} 1`)
	require.Contains(t, m.raw, `creditsd_spends_refused_total{code="debt_outstanding"} 1`)
	require.Contains(t, m.raw, `creditsd_ledger_credits_total{kind="grant",product="com.example.sora.credits10"} 10`)
	require.Contains(t, m.raw, `creditsd_spends_total{product="sora"} 1`)
	require.Contains(t, m.raw, `creditsd_ledger_credits_total{kind="refund",product=""} 7`, "refunded credits are counted")
	require.Contains(t, m.raw, `creditsd_ledger_credits_total{kind="debt",product=""} 3`)
	commits, writes := metricValue(t, m.raw, "creditsd_db_commits_total"), metricValue(t, m.raw, "creditsd_db_writes_total")
	require.Positive(t, commits, "the writer's commits are counted")
	require.GreaterOrEqual(t, writes, commits, "each commit holds at least one write")
	require.Positive(t, metricValue(t, m.raw, `creditsd_db_writer_seconds_total{phase="commit"}`))
}

// metricValue is the value of the sample named (with its labels) in a
// Prometheus text exposition.
func metricValue(t *testing.T, raw, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(raw, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func TestEndToEndSpendRefusals(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		code   string
	}{
		{"unknown product", w.backend(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "dalle", "credits": 1}, 400, "unknown_product"},
		{"unknown resolution", w.backend(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "generation": map[string]any{"seconds": 10, "resolution": "8k"}}, 400, "unknown_resolution"},
		{"zero credits", w.backend(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "credits": 0}, 400, "invalid_credits"},
		{"absurd credits", w.backend(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "credits": 1_000_000_001}, 400, "invalid_credits"},
		{"absurd grant", w.admin(), "/v1/users/alice/grants", `{"idempotency_key":"k","credits":9223372036854775000,"reason":"x"}`, 400, "invalid_credits"},
		{"absurd seconds", w.backend(), "/v1/users/alice/spends", `{"idempotency_key":"k","product":"sora","generation":{"seconds":1e400,"resolution":"480p"}}`, 400, "invalid_seconds"},
		{"negative seconds", w.backend(), "/v1/users/alice/spends", `{"idempotency_key":"k","product":"sora","generation":{"seconds":-1e-9,"resolution":"480p"}}`, 400, "invalid_seconds"},
		{"fractional credits", w.backend(), "/v1/users/alice/spends", `{"idempotency_key":"k","product":"sora","credits":1.5}`, 400, "invalid_credits"},
		{"both forms", w.backend(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "credits": 1, "generation": map[string]any{"seconds": 1, "resolution": "480p"}}, 400, "invalid_body"},
		{"no key", w.backend(), "/v1/users/alice/spends", map[string]any{"product": "sora", "credits": 1}, 400, "invalid_idempotency_key"},
		{"user token cannot spend", w.token("alice", "", time.Minute), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "credits": 1}, 403, "insufficient_scope"},
		{"admin cannot spend", w.admin(), "/v1/users/alice/spends", map[string]any{"idempotency_key": "k", "product": "sora", "credits": 1}, 403, "insufficient_scope"},
		{"spender cannot grant", w.backend(), "/v1/users/alice/grants", map[string]any{"idempotency_key": "k", "credits": 1, "reason": "x"}, 403, "insufficient_scope"},
		{"grant without reason", w.admin(), "/v1/users/alice/grants", map[string]any{"idempotency_key": "k", "credits": 1}, 400, "invalid_reason"},
		{"grant reason with a control character", w.admin(), "/v1/users/alice/grants", map[string]any{"idempotency_key": "k", "credits": 1, "reason": "a\u0000b"}, 400, "invalid_reason"},
		{"grant reason with a right-to-left override", w.admin(), "/v1/users/alice/grants", map[string]any{"idempotency_key": "k", "credits": 1, "reason": "refund\u202e"}, 400, "invalid_reason"},
		{"grant reason not UTF-8", w.admin(), "/v1/users/alice/grants", "{\"idempotency_key\":\"k\",\"credits\":1,\"reason\":\"a\xffb\"}", 400, "invalid_reason"},
		{"grant expiring in the past", w.admin(), "/v1/users/alice/grants", map[string]any{"idempotency_key": "k", "credits": 1, "reason": "x", "expires_at": "2020-01-01T00:00:00Z"}, 400, "invalid_expires_at"},
		{"reverse of an unknown spend", w.backend(), "/v1/users/alice/spends/sp_nope/reverse", nil, 404, "spend_not_found"},
		{"spender cannot read the ledger", w.backend(), "/v1/users/alice/ledger", nil, 403, "insufficient_scope"},
		{"bad cursor", w.admin(), "/v1/users/alice/ledger?cursor=abc", nil, 400, "invalid_cursor"},
		{"unknown tier", w.admin(), "/v1/users/alice/tier", map[string]any{"tier": "gold", "reason": "x"}, 400, "unknown_tier"},
	} {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if c.path == "/v1/users/alice/ledger" || c.path == "/v1/users/alice/ledger?cursor=abc" {
				method = "GET"
			}
			if c.path == "/v1/users/alice/tier" {
				method = "PUT"
			}
			a := w.do(method, c.path, c.token, c.body)
			require.Equal(t, c.status, a.status, a.raw)
			require.Equal(t, c.code, a.code())
		})
	}
}

func TestEndToEndProTier(t *testing.T) {
	w := newWorld(t)
	until := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	a := w.do("PUT", "/v1/users/alice/tier", w.admin(), map[string]any{"tier": "pro", "expires_at": until, "reason": "web subscription"})
	require.Equal(t, http.StatusOK, a.status, a.raw)
	e := w.entitlement("alice")
	require.Equal(t, "pro", e.Tier)
	require.Equal(t, int64(100), e.Allowance.Limit)

	// A subscription transaction that the app submits makes its user Pro
	// until it expires.
	start := time.Now().Add(-time.Hour)
	sub := w.transaction("4000001", w.tokens.Token("bob"), start, func(p *devca.TransactionPayload) {
		p.ProductID, p.Type, p.ExpiresDate = "com.example.pro.monthly", "Auto-Renewable Subscription", devca.Millis(start.AddDate(0, 1, 0))
	})
	a = w.submit("bob", sub)
	require.Equal(t, http.StatusCreated, a.status, "a subscription that makes bob Pro is something new: %s", a.raw)
	require.Equal(t, "pro", a.body["tier"])
	require.Equal(t, http.StatusOK, w.submit("bob", sub).status, "submitting it again is not")
	expired := w.transaction("4000002", w.tokens.Token("carol"), start.AddDate(0, -2, 0), func(p *devca.TransactionPayload) {
		p.ProductID, p.Type, p.ExpiresDate = "com.example.pro.monthly", "Auto-Renewable Subscription", devca.Millis(start.AddDate(0, -1, 0))
		p.SignedDate = devca.Millis(time.Now())
	})
	a = w.submit("carol", expired)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "free", a.body["tier"], "an expired subscription gives nothing")
}

// 64 simultaneous spends against 40 spendable credits over HTTP: exactly 40
// succeed, and nothing anywhere goes negative.
func TestEndToEndConcurrentSpends(t *testing.T) {
	w := newWorld(t)
	g := w.do("POST", "/v1/users/alice/grants", w.admin(), map[string]any{"idempotency_key": "g", "credits": 10, "reason": "test"})
	require.Equal(t, http.StatusCreated, g.status, g.raw)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := w.spend("alice", map[string]any{"idempotency_key": fmt.Sprintf("k%d", i), "product": "sora", "credits": 1})
			switch a.status {
			case http.StatusCreated:
				ok.Add(1)
				if s := num(a, "entitlement", "spendable"); s < 0 {
					t.Errorf("spendable went negative: %d", s)
				}
			case http.StatusPaymentRequired:
				refused.Add(1)
			default:
				t.Errorf("unexpected %d: %s", a.status, a.raw)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(40), ok.Load())
	require.Equal(t, int64(24), refused.Load())
	e := w.entitlement("alice")
	require.Equal(t, int64(0), e.Spendable)
	require.Equal(t, int64(0), e.Credits.Balance)
}

// A grant's replay answers the first grant even once its expires_at has
// passed (the contract's replay rule); a new key with that expiry is
// refused.
func TestEndToEndGrantReplayAfterItsExpiry(t *testing.T) {
	w := newWorld(t)
	// The shortest expiry that arrives in time: a slow start (the race
	// detector, a busy machine) doubles the margin instead of failing.
	var exp time.Time
	var body map[string]any
	var first answer
	for margin := 200 * time.Millisecond; ; margin *= 2 {
		exp = time.Now().Add(margin)
		body = map[string]any{"idempotency_key": fmt.Sprint("short-", margin), "credits": 3,
			"reason": "a short promotion", "expires_at": exp.UTC().Format(time.RFC3339Nano)}
		first = w.do("POST", "/v1/users/alice/grants", w.admin(), body)
		if first.status != http.StatusBadRequest || margin > 10*time.Second {
			break
		}
	}
	require.Equal(t, http.StatusCreated, first.status, first.raw)
	time.Sleep(time.Until(exp) + 50*time.Millisecond)

	again := w.do("POST", "/v1/users/alice/grants", w.admin(), body)
	require.Equal(t, http.StatusCreated, again.status, again.raw)
	require.Equal(t, first.body["lot"].(map[string]any)["lot_id"], again.body["lot"].(map[string]any)["lot_id"])
	body["idempotency_key"] = "short-late"
	late := w.do("POST", "/v1/users/alice/grants", w.admin(), body)
	require.Equal(t, http.StatusBadRequest, late.status, late.raw)
	require.Equal(t, "invalid_expires_at", late.code())
}

// An expires_at whose UTC time is past year 9999 is refused, for a grant and
// a tier alike: no answer can write such a lot, so a grant of one answered
// 201 with no body and broke the user's entitlement for good (null on every
// read, an empty body for every spend). The last instant that can be
// written is accepted, and the user's answers stay whole.
func TestEndToEndExpiresAtPastYear9999(t *testing.T) {
	w := newWorld(t)
	far := "9999-12-31T23:00:00-05:00" // 10000-01-01T04:00:00Z
	grant := w.do("POST", "/v1/users/kate/grants", w.admin(),
		map[string]any{"idempotency_key": "y1", "credits": 5, "reason": "x", "expires_at": far})
	require.Equal(t, http.StatusBadRequest, grant.status, grant.raw)
	require.Equal(t, "invalid_expires_at", grant.code())
	tier := w.do("PUT", "/v1/users/kate/tier", w.admin(), map[string]any{"tier": "pro", "expires_at": far, "reason": "x"})
	require.Equal(t, http.StatusBadRequest, tier.status, tier.raw)
	require.Equal(t, "invalid_expires_at", tier.code())

	last := w.do("POST", "/v1/users/kate/grants", w.admin(),
		map[string]any{"idempotency_key": "y2", "credits": 5, "reason": "x", "expires_at": "9999-12-31T23:59:59.999Z"})
	require.Equal(t, http.StatusCreated, last.status, last.raw)
	require.Equal(t, "9999-12-31T23:59:59.999Z", last.body["lot"].(map[string]any)["expires_at"])
	e := w.entitlement("kate")
	require.Len(t, e.Credits.Lots, 1)
	require.Equal(t, int64(5), e.Credits.Balance)
	sp := w.spend("kate", map[string]any{"idempotency_key": "s1", "product": "sora", "credits": 1})
	require.Equal(t, http.StatusCreated, sp.status, sp.raw)
	require.NotNil(t, sp.body["entitlement"], sp.raw)
}

// A lot whose expiry is past what an answer can write (a grant of year
// 10000 in UTC left in the database before such grants were refused) is
// answered as expiring at the last instant one can; one that no answer can
// write at all (granted after year 9999) makes its user's answers a logged
// 500 problem, never a 2xx with a body of null or none.
func TestEndToEndFarLots(t *testing.T) {
	w := newWorld(t)
	grant := w.do("POST", "/v1/users/kate/grants", w.admin(), map[string]any{"idempotency_key": "y1", "credits": 5, "reason": "x"})
	require.Equal(t, http.StatusCreated, grant.status, grant.raw)
	far := time.Date(10000, 1, 1, 4, 0, 0, 0, time.UTC).UnixMilli()
	edit := func(column string) {
		w.proc.stop(t)
		db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "creditsd.db"))
		require.NoError(t, err)
		_, err = db.Exec(`UPDATE lots SET `+column+` = ? WHERE user_id = 'kate'`, far)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		w.proc = start(t, "serve", "--config", w.config)
	}
	answers := func(key string) []answer {
		return []answer{
			w.do("GET", "/v1/me/entitlement", w.token("kate", "", time.Minute), nil),
			w.do("GET", "/v1/users/kate/entitlement", w.backend(), nil),
			w.spend("kate", map[string]any{"idempotency_key": key, "product": "sora", "credits": 1}),
		}
	}

	edit("expires_at")
	for _, a := range answers("s1") {
		require.Less(t, a.status, 300, a.raw)
		require.Contains(t, a.raw, `"expires_at":"9999-12-31T23:59:59.999Z"`)
	}
	edit("granted_at")
	for _, a := range answers("s2") {
		require.Equal(t, http.StatusInternalServerError, a.status, a.raw)
		require.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
		require.Equal(t, "internal", a.code())
	}
}

// Every lot carries product_id, transaction_id and environment, as the
// contract lists them: null for an admin lot, which has none of them, in
// the grant's answer and in every entitlement.
func TestEndToEndAdminLotKeys(t *testing.T) {
	w := newWorld(t)
	grant := w.do("POST", "/v1/users/kate/grants", w.admin(), map[string]any{"idempotency_key": "g1", "credits": 5, "reason": "x"})
	require.Equal(t, http.StatusCreated, grant.status, grant.raw)
	read := w.do("GET", "/v1/me/entitlement", w.token("kate", "", time.Minute), nil)
	require.Equal(t, http.StatusOK, read.status, read.raw)
	firstLot := func(e any) any { return e.(map[string]any)["credits"].(map[string]any)["lots"].([]any)[0] }
	for _, lot := range []any{grant.body["lot"], firstLot(grant.body["entitlement"]), firstLot(read.body)} {
		for _, key := range []string{"product_id", "transaction_id", "environment"} {
			v, ok := lot.(map[string]any)[key]
			require.True(t, ok, "%s missing: %s", key, read.raw)
			require.Nil(t, v, key)
		}
	}
}

// A generation's seconds may be any JSON number, as a Python or JS backend
// writes a float: read exactly and rounded up to the millisecond, so a
// length a hair past 10 s is a started unit more, never a unit less.
func TestEndToEndGenerationSecondsAnyNumber(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		seconds string
		credits float64
	}{{"1e1", 8}, {"10.000000000000002", 12}, {"0.5E+1", 4}} {
		a := w.spend("pat", `{"idempotency_key":"`+c.seconds+`","product":"sora","generation":{"seconds":`+c.seconds+`,"resolution":"1080p"}}`)
		require.Equal(t, http.StatusCreated, a.status, a.raw)
		require.Equal(t, c.credits, a.body["credits"], c.seconds)
	}
}

// A signed purchase dated after the year 9999 does not verify (400): once
// recorded, its lot's granted_at could be written by no answer, and every
// answer of its user failed with 500 for good, a spend's after it had
// been charged. The last writable instant is taken.
func TestEndToEndPurchaseDatedPastYear9999(t *testing.T) {
	w := newWorld(t)
	token := w.tokens.Token("yuri")
	far := w.transaction("5800001", token, time.Now(), func(p *devca.TransactionPayload) {
		p.PurchaseDate, p.OriginalPurchaseDate = 253402300800000, 253402300800000
	})
	a := w.notify("far-1", "ONE_TIME_CHARGE", far)
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, "malformed_jws", a.code(), a.raw)
	a = w.submit("yuri", far)
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, http.StatusOK, w.do("GET", "/v1/me/entitlement", w.token("yuri", "", time.Minute), nil).status)

	last := w.transaction("5800002", token, time.Now(), func(p *devca.TransactionPayload) {
		p.PurchaseDate, p.OriginalPurchaseDate = 253402300799999, 253402300799999
	})
	a = w.notify("far-2", "ONE_TIME_CHARGE", last)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	w.entitlement("yuri") // answers 200
	sp := w.spend("yuri", map[string]any{"idempotency_key": "s1", "product": "sora", "credits": 1})
	require.Equal(t, http.StatusCreated, sp.status, sp.raw)
}

// A spend's replay answers the spend kept under its key even after the
// pricing changed so that its body would be refused now: the backend's
// retry of a spend that was charged must not be told it was never valid.
// A new key with that body is refused as before.
func TestEndToEndSpendReplayAfterAPricingChange(t *testing.T) {
	w := newWorld(t)
	body := map[string]any{"idempotency_key": "g1", "product": "sora", "generation": map[string]any{"seconds": 10, "resolution": "1080p"}}
	first := w.spend("carol", body)
	require.Equal(t, http.StatusCreated, first.status, first.raw)

	f, err := os.OpenFile(w.config, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("pricing: {sora: {resolutions: {480p: 1, 720p: 2}}}\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	w.restart()

	again := w.spend("carol", body)
	require.Equal(t, http.StatusCreated, again.status, again.raw)
	require.Equal(t, first.body["spend_id"], again.body["spend_id"])
	require.Equal(t, first.body["credits"], again.body["credits"])

	body["idempotency_key"] = "g2"
	fresh := w.spend("carol", body)
	require.Equal(t, http.StatusBadRequest, fresh.status, fresh.raw)
	require.Equal(t, "unknown_resolution", fresh.code())
	body["idempotency_key"], body["product"] = "g1", "codex"
	reused := w.spend("carol", body)
	require.Equal(t, http.StatusBadRequest, reused.status, "the key kept for another body leaves the refusal: %s", reused.raw)
}
