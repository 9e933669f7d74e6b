package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

func TestEndToEndPurchasePath(t *testing.T) {
	w := newWorld(t)
	bought := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	// A user exists from their first call, with the free allowance.
	e := w.entitlement("alice")
	require.Equal(t, "free", e.Tier)
	require.Equal(t, int64(30), e.Allowance.Limit)
	require.Equal(t, int64(0), e.Credits.Balance)
	require.Equal(t, w.tokens.Token("alice"), e.AppAccountToken)
	require.Equal(t, int64(30), e.Spendable)

	// Apple's webhook grants a lot for alice's pack.
	tx1 := w.transaction("1000001", e.AppAccountToken, bought)
	a := w.notify("8a1c1c3e-0000-4000-8000-000000000001", "ONE_TIME_CHARGE", tx1)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	e = w.entitlement("alice")
	require.Equal(t, int64(10), e.Credits.Balance)
	require.Len(t, e.Credits.Lots, 1)
	lot := e.Credits.Lots[0]
	require.Equal(t, "app_store", lot.Source)
	require.Equal(t, "1000001", lot.TransactionID)
	require.Equal(t, "Sandbox", lot.Environment)
	require.True(t, bought.Equal(lot.GrantedAt))
	require.True(t, bought.AddDate(1, 0, 0).Equal(*lot.ExpiresAt))

	// The app submitting the same transaction adds nothing: 200, not 201.
	a = w.submit("alice", tx1)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])

	// A new purchase that the app submits first is granted (201), and the
	// webhook that follows adds nothing.
	tx2 := w.transaction("1000002", e.AppAccountToken, bought)
	a = w.submit("alice", tx2)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, http.StatusOK, w.notify("8a1c1c3e-0000-4000-8000-000000000002", "ONE_TIME_CHARGE", tx2).status)
	require.Equal(t, int64(20), w.entitlement("alice").Credits.Balance)

	// Bob cannot claim alice's purchase; nobody else can take a token-less
	// one that alice claimed first.
	require.Equal(t, "transaction_not_yours", w.submit("bob", tx1).code())
	require.Equal(t, http.StatusForbidden, w.submit("bob", tx1).status)
	noToken := w.transaction("1000003", "", bought)
	require.Equal(t, http.StatusCreated, w.submit("alice", noToken).status)
	a = w.submit("bob", noToken)
	require.Equal(t, http.StatusConflict, a.status)
	require.Equal(t, "transaction_claimed", a.code())
	require.Equal(t, int64(30), w.entitlement("alice").Credits.Balance)
	require.Equal(t, int64(0), w.entitlement("bob").Credits.Balance)

	// A purchase that reaches us before its user ever called is kept and
	// granted on their first call.
	a = w.notify("8a1c1c3e-0000-4000-8000-000000000003", "ONE_TIME_CHARGE", w.transaction("1000004", w.tokens.Token("carol"), bought))
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "pending_user", a.body["outcome"], "the webhook says the lot waits for its user")
	require.Equal(t, int64(10), w.entitlement("carol").Credits.Balance)

	// Revoked, or bought 13 months ago: recorded, 2xx, adds nothing.
	revoked := w.transaction("1000005", e.AppAccountToken, bought, func(p *devca.TransactionPayload) {
		p.RevocationDate = devca.Millis(time.Now())
	})
	a = w.submit("alice", revoked)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	old := w.transaction("1000006", e.AppAccountToken, time.Now().AddDate(0, -13, 0), func(p *devca.TransactionPayload) {
		p.SignedDate = devca.Millis(time.Now()) // Apple signs what it sends now
	})
	a = w.submit("alice", old)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, int64(30), w.entitlement("alice").Credits.Balance)

	// A refund takes a pack back. Apple's later signature of it, no longer
	// revoked (the refund reversed), gives it back when the app submits it:
	// that claim granted something, 201; its replay, 200.
	signed := func(at time.Time, revoked bool) func(*devca.TransactionPayload) {
		return func(p *devca.TransactionPayload) {
			p.SignedDate = devca.Millis(at)
			if revoked {
				p.RevocationDate = devca.Millis(at)
			}
		}
	}
	now := time.Now()
	refund := w.transaction("1000002", e.AppAccountToken, bought, signed(now, true))
	require.Equal(t, http.StatusOK, w.notify("8a1c1c3e-0000-4000-8000-000000000004", "REFUND", refund).status)
	require.Equal(t, int64(20), w.entitlement("alice").Credits.Balance)
	reversed := w.transaction("1000002", e.AppAccountToken, bought, signed(now.Add(time.Second), false))
	a = w.submit("alice", reversed)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(30), a.body["credits"].(map[string]any)["balance"])
	require.Equal(t, http.StatusOK, w.submit("alice", reversed).status)

	// Everything survives a restart.
	w.restart()
	require.Equal(t, int64(30), w.entitlement("alice").Credits.Balance)
	require.Equal(t, int64(10), w.entitlement("carol").Credits.Balance)
}

// A signed transaction whose appAccountToken is not a UUID (Apple's always
// are) is recorded by the webhook, not a 500 that Apple would retry for
// ever; and it is nobody's to claim, not the first claimant's.
func TestEndToEndMalformedAppAccountToken(t *testing.T) {
	w := newWorld(t)
	for i, token := range []string{"aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaa-a-", "not-a-uuid"} {
		tx := w.transaction(fmt.Sprintf("150000%d", i), token, time.Now().Add(-time.Minute))
		a := w.notify(fmt.Sprintf("8a1c1c3e-0000-4000-8000-00000000015%d", i), "ONE_TIME_CHARGE", tx)
		require.Equal(t, http.StatusOK, a.status, a.raw)
		require.Equal(t, "pending_user", a.body["outcome"], a.raw)
		a = w.submit("bob", tx)
		require.Equal(t, http.StatusForbidden, a.status, a.raw)
		require.Equal(t, "transaction_not_yours", a.code())
		require.Equal(t, int64(0), w.entitlement("bob").Credits.Balance)
	}
}

func TestEndToEndRefusals(t *testing.T) {
	w := newWorld(t)
	alice := w.tokens.Token("alice")
	now := time.Now()
	other, err := devca.New(devca.Options{Now: now.Add(-time.Hour)})
	require.NoError(t, err)
	strangerTx, err := other.Sign(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "2000001", alice, now))
	require.NoError(t, err)
	good := w.transaction("2000002", alice, now)
	forged := good[:len(good)-8] + "AAAAAAAA"

	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"another CA", map[string]string{"signed_transaction": strangerTx}, 400, "invalid_chain"},
		{"forged signature", map[string]string{"signed_transaction": forged}, 400, "invalid_signature"},
		{"not a JWS", map[string]string{"signed_transaction": "x.y"}, 400, "malformed_jws"},
		{"unknown product", map[string]string{"signed_transaction": w.transaction("2000003", alice, now,
			func(p *devca.TransactionPayload) { p.ProductID = "com.example.other" })}, 422, "product_not_sold"},
		{"another app", map[string]string{"signed_transaction": w.transaction("2000004", alice, now,
			func(p *devca.TransactionPayload) { p.BundleID = "com.example.other" })}, 422, "invalid_app_identifier"},
		{"another environment", map[string]string{"signed_transaction": w.transaction("2000005", alice, now,
			func(p *devca.TransactionPayload) { p.Environment = receipts.Production })}, 422, "invalid_environment"},
		{"app receipt until the API client is configured", map[string]string{"app_receipt": "MIIT"}, 422, "app_receipt_unsupported"},
		{"empty body", "", 400, "invalid_body"},
		{"unknown field", `{"signed_transaction": "a", "extra": 1}`, 400, "invalid_body"},
		{"both forms", map[string]string{"signed_transaction": good, "app_receipt": "MIIT"}, 400, "invalid_body"},
		{"too large", `{"signed_transaction": "` + strings.Repeat("a", 1<<20) + `"}`, 413, "body_too_large"},
		{"a signed transaction too large", `{"signed_transaction": "` + strings.Repeat("a", 65<<10) + `"}`, 413, "body_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), c.body)
			require.Equal(t, c.status, a.status, a.raw)
			require.Equal(t, c.code, a.code())
			require.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
			require.Equal(t, float64(c.status), a.body["status"])
		})
	}
	require.Equal(t, int64(0), w.entitlement("alice").Credits.Balance)

	big := w.do("POST", "/v1/appstore/notifications", "", `{"signedPayload":"`+strings.Repeat("a", 65<<10)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, big.status)
}

func TestEndToEndAuthentication(t *testing.T) {
	w := newWorld(t)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte("another-secret-that-is-long-enough-for-hs256"))
	require.NoError(t, err)
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}).SignedString([]byte(e2eSecret))
	require.NoError(t, err)
	critical := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	critical.Header["crit"] = []string{"urn:example:ext"}
	critical.Header["urn:example:ext"] = true
	crit, err := critical.SignedString([]byte(e2eSecret))
	require.NoError(t, err)

	for _, c := range []struct {
		name, path, token string
		status            int
	}{
		{"no token", "/v1/me/entitlement", "", 401},
		{"expired", "/v1/me/entitlement", w.token("alice", "", -time.Hour), 401},
		{"expired a second ago", "/v1/me/entitlement", w.token("alice", "", -time.Second), 401}, // no leeway by default
		{"alg none", "/v1/me/entitlement", none, 401},
		{"wrong key", "/v1/me/entitlement", wrongKey, 401},
		{"no exp", "/v1/me/entitlement", noExp, 401},
		{"crit header", "/v1/me/entitlement", crit, 401},
		{"garbage", "/v1/me/entitlement", "not.a.jwt", 401},
		{"user reads self", "/v1/me/entitlement", w.token("alice", "", time.Minute), 200},
		{"user reads another user", "/v1/users/bob/entitlement", w.token("alice", "", time.Minute), 403},
		{"user reads self by id", "/v1/users/alice/entitlement", w.token("alice", "", time.Minute), 403},
		{"spend service reads anyone", "/v1/users/bob/entitlement", w.token("generation-backend", "credits:spend", time.Minute), 200},
		{"admin reads anyone", "/v1/users/bob/entitlement", w.token("ops", "credits:admin", time.Minute), 200},
		{"other scope", "/v1/users/bob/entitlement", w.token("svc", "credits:other", time.Minute), 403},
		{"service is not a user", "/v1/me/entitlement", w.token("svc", "credits:spend", time.Minute), 403},
		{"bad user id", "/v1/users/bad%20id/entitlement", w.token("svc", "credits:spend", time.Minute), 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := w.do("GET", c.path, c.token, nil)
			require.Equal(t, c.status, a.status, a.raw)
			if c.status >= 400 {
				require.NotEmpty(t, a.code())
			}
		})
	}
}

func TestEndToEndOperations(t *testing.T) {
	w := newWorld(t)
	require.Equal(t, http.StatusOK, w.do("GET", "/healthz", "", nil).status)
	require.Equal(t, http.StatusOK, w.do("GET", "/readyz", "", nil).status)
	w.notify("8a1c1c3e-0000-4000-8000-0000000000aa", "TEST", "")
	m := w.do("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, m.status)
	require.Contains(t, m.raw, `creditsd_notifications_total{duplicate="false",outcome="recorded",type="TEST"} 1`)
	require.Contains(t, m.raw, "process_resident_memory_bytes")
	procs, ok := procsFor(os.Getenv("GOMAXPROCS"), startProcs, runtime.NumCPU()) // the server inherits this environment
	if !ok {
		procs = startProcs
	}
	require.Contains(t, m.raw, fmt.Sprintf("\ngo_sched_gomaxprocs_threads %d\n", procs), "serve's Ps (tuneProcs)")
	nf := w.do("GET", "/v1/nothing", "", nil)
	require.Equal(t, http.StatusNotFound, nf.status)
	require.Equal(t, "not_found", nf.code())
	na := w.do("GET", "/v1/appstore/notifications", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, na.status)
	require.Equal(t, "method_not_allowed", na.code())
	require.Equal(t, "application/problem+json", na.header.Get("Content-Type"))
	require.Contains(t, na.header.Get("Allow"), "POST")

	// A start that migrates says so before it does, and when it is done;
	// one with nothing to migrate says nothing of it.
	require.Contains(t, w.proc.log(), `"msg":"migrating the database"`)
	require.Contains(t, w.proc.log(), `"msg":"database migrated"`)
	w.restart()
	require.NotContains(t, w.proc.log(), "migrat")
}

// Apple rounds revocationPercentage to a milliunit, so a prorated refund
// too small to show is 0 %: it takes nothing back (it had taken the whole
// pack), a later version that refunds half takes half, and one of 0 % after
// it gives the half back. One that names no percentage at all revokes the
// pack, as before.
func TestEndToEndProratedRefundOfNothing(t *testing.T) {
	w := newWorld(t)
	alice := w.tokens.Token("alice")
	bought := time.Now().Add(-time.Hour)
	w.entitlement("alice")
	require.Equal(t, http.StatusOK, w.notify("6a1c1c3e-0000-4000-8000-000000000001", "ONE_TIME_CHARGE",
		w.transaction("3000001", alice, bought)).status)
	// Signed as Apple writes it, the percentage there even when 0 (devca's
	// payload leaves a 0 out).
	prorated := func(after time.Duration, percent int64) string {
		p := devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "3000001", alice, bought)
		p.SignedDate, p.RevocationDate, p.RevocationType = devca.Millis(bought.Add(after)), devca.Millis(bought.Add(after)), "REFUND_PRORATED"
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		m["revocationPercentage"] = percent
		jws, err := w.ca.Sign(m)
		require.NoError(t, err)
		return jws
	}
	for i, step := range []struct {
		percent int64
		outcome string
		balance int64
	}{{0, "granted", 10}, {50_000, "revoked", 5}, {0, "granted", 10}} {
		a := w.notify(fmt.Sprintf("6a1c1c3e-0000-4000-8000-00000000001%d", i), "REFUND", prorated(time.Duration(i+1)*time.Minute, step.percent))
		require.Equal(t, http.StatusOK, a.status, a.raw)
		require.Equal(t, step.outcome, a.body["outcome"], a.raw)
		require.Equal(t, step.balance, w.entitlement("alice").Credits.Balance, "after a prorated refund of %d", step.percent)
	}

	// A REFUND_PRORATED with no percentage at all still revokes the pack.
	none := w.transaction("3000001", alice, bought, func(p *devca.TransactionPayload) {
		p.SignedDate, p.RevocationDate, p.RevocationType = devca.Millis(bought.Add(time.Hour)), devca.Millis(bought.Add(time.Hour)), "REFUND_PRORATED"
	})
	a := w.notify("6a1c1c3e-0000-4000-8000-000000000019", "REFUND", none)
	require.Equal(t, "revoked", a.body["outcome"], a.raw)
	require.Equal(t, int64(0), w.entitlement("alice").Credits.Balance)
}
