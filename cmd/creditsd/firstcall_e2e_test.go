package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFor sends Apple's notification of a pack bought by user, who has not
// called creditsd yet: it waits for her (pending_user).
func (w *world) waitFor(user, transactionID, uuid string) {
	w.t.Helper()
	tx := w.transaction(transactionID, w.tokens.Token(user), time.Now().Add(-time.Minute))
	a := w.notify(uuid, "ONE_TIME_CHARGE", tx)
	require.Equal(w.t, http.StatusOK, a.status, a.raw)
	require.Equal(w.t, "pending_user", a.body["outcome"], a.raw)
}

// ledger reads user's whole ledger as an admin.
func (w *world) ledger(user string) []map[string]any {
	w.t.Helper()
	a := w.do("GET", "/v1/users/"+user+"/ledger?limit=500", w.admin(), nil)
	require.Equal(w.t, http.StatusOK, a.status, a.raw)
	var entries []map[string]any
	for _, e := range a.body["entries"].([]any) {
		entries = append(entries, e.(map[string]any))
	}
	return entries
}

// grantEntry is the grant entry of a purchase's lot in user's ledger.
func (w *world) grantEntry(user, transactionID string) map[string]any {
	w.t.Helper()
	for _, e := range w.ledger(user) {
		if e["kind"] == "grant" && e["ref"] == transactionID {
			return e
		}
	}
	w.t.Fatalf("no grant entry for transaction %s in %s's ledger", transactionID, user)
	return nil
}

// A purchase that waited for its user is granted by the first call that
// names her, and its entry names that call's caller: the generation
// backend spending for her, an admin reading her entitlement. She did
// nothing, and the entry said user:<id>.
func TestEndToEndWaitingPurchaseNamesTheFirstCaller(t *testing.T) {
	w := newWorld(t)
	w.waitFor("uma", "5000001", "7a1c1c3e-0000-4000-8000-000000000001")
	a := w.spend("uma", map[string]any{"idempotency_key": "gen-1", "product": "sora", "credits": 1})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, "service:generation-backend", w.grantEntry("uma", "5000001")["actor"])

	w.waitFor("val", "5000002", "7a1c1c3e-0000-4000-8000-000000000002")
	a = w.do("GET", "/v1/users/val/entitlement", w.admin(), nil)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "service:ops", w.grantEntry("val", "5000002")["actor"])

	w.waitFor("wes", "5000003", "7a1c1c3e-0000-4000-8000-000000000003")
	require.Equal(t, int64(10), w.entitlement("wes").Credits.Balance)
	require.Equal(t, "user:wes", w.grantEntry("wes", "5000003")["actor"], "her own first call")
}

// An admin's ledger read is a call that names its user: a new one is
// created by it, so her first page shows the purchase that waited for her.
// It answered {"entries": []}, and the grant appeared only after an
// entitlement read.
func TestEndToEndLedgerReadCreatesItsUser(t *testing.T) {
	w := newWorld(t)
	w.waitFor("moe", "5000010", "7a1c1c3e-0000-4000-8000-000000000010")
	entries := w.ledger("moe")
	require.Len(t, entries, 1, "the first read shows the grant")
	require.Equal(t, "grant", entries[0]["kind"])
	require.Equal(t, float64(10), entries[0]["credits"])
	require.Equal(t, "service:ops", entries[0]["actor"], "granted by the read that created her")
	require.Len(t, w.ledger("moe"), 1, "and once")

	a := w.do("GET", "/v1/users/moe/entitlement", w.admin(), nil)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, int64(10), num(a, "credits", "balance"))
}
