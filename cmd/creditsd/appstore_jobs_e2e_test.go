package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// consented is the configuration of a deployment whose terms obtain every
// user's consent to share consumption data (customer_consented is false
// unless an operator says so).
const consented = "jobs:\n  consumption_answers: {customer_consented: true}\n"

// reconcile finds in Apple's history what the webhook missed and applies it
// through the same path; consumption-answers tells Apple how much of a pack
// was used when its buyer asks for a refund. Both run by hand beside a live
// server, against a fake App Store Server that speaks Apple's paths.
func TestEndToEndAppStoreJobs(t *testing.T) {
	w, apple := newWorldWithApple(t, consented)
	w.entitlement("alice")
	bought := time.Now().Add(-time.Hour)
	tx := w.transaction("6000001", w.tokens.Token("alice"), bought)
	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "6000001", w.tokens.Token("alice"), bought))
	apple.AddNotification(w.signedNotification("aa1c1c3e-0000-4000-8000-000000000001", "ONE_TIME_CHARGE", tx),
		time.Now().Add(-50*time.Minute), true)

	for range 2 {
		_, stderr, code := runJob(t, "reconcile", "--config", w.config)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, int64(10), w.entitlement("alice").Credits.Balance, "granted once, however often it runs")
	}

	a := w.spend("alice", map[string]any{"idempotency_key": "s1", "product": "codex", "credits": 34})
	require.Equal(t, http.StatusCreated, a.status, a.raw) // the allowance's 30, then 4 of the pack
	require.Equal(t, http.StatusOK, w.notify("aa1c1c3e-0000-4000-8000-000000000002", "CONSUMPTION_REQUEST", tx).status)
	for range 2 {
		_, stderr, code := runJob(t, "consumption-answers", "--config", w.config)
		require.Equal(t, 0, code, stderr)
	}
	sent := apple.Consumption()["6000001"]
	require.Len(t, sent, 1, "answered once")
	require.Equal(t, serverapi.ConsumptionInfo{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered,
		ConsumptionPercentage: serverapi.Percent(40000), RefundPreference: serverapi.RefundGrantProrated, SampleContentProvided: true}, sent[0])
}

// Apple takes consumption data only with the customer's consent, and
// creditsd keeps none of its own: until an operator says the terms obtain
// it (customer_consented), the job sends nothing, exits 0 and says why.
func TestEndToEndConsumptionNeedsConsent(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	w.entitlement("alice")
	tx := w.transaction("6000009", w.tokens.Token("alice"), time.Now().Add(-time.Hour))
	require.Equal(t, http.StatusOK, w.notify("aa1c1c3e-0000-4000-8000-000000000091", "ONE_TIME_CHARGE", tx).status)
	require.Equal(t, http.StatusOK, w.notify("aa1c1c3e-0000-4000-8000-000000000092", "CONSUMPTION_REQUEST", tx).status)
	stdout, stderr, code := runJob(t, "consumption-answers", "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "consumption-answers: skipped: jobs.consumption_answers.customer_consented is not true")
	require.Empty(t, apple.Consumption(), "nothing told Apple")
	require.Contains(t, w.proc.log(), `"level":"WARN","msg":"jobs.consumption_answers.customer_consented is not set`,
		"serve says so at start: a deployment that relied on the old default true stopped answering")

	consenting, _ := newWorldWithApple(t, consented)
	require.NotContains(t, consenting.proc.log(), "customer_consented is not set")
}

// A refund request on a Pro period is answered as one: the tier was
// delivered to its owner, there is no consumptionPercentage (Apple refuses
// one for an auto-renewable subscription and computes it from the time
// elapsed), and auto prefers a prorated refund.
func TestEndToEndConsumptionOfSubscription(t *testing.T) {
	w, apple := newWorldWithApple(t, consented)
	w.entitlement("alice")
	start := time.Now().Add(-24 * time.Hour)
	pro := func(p *devca.TransactionPayload) {
		p.ProductID, p.Type, p.ExpiresDate = "com.example.pro.monthly", "Auto-Renewable Subscription", devca.Millis(start.AddDate(0, 1, 0))
		p.SignedDate = devca.Millis(time.Now()) // within the test chain's validity
	}
	tx := w.transaction("6100001", w.tokens.Token("alice"), start, pro)
	p := devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "6100001", w.tokens.Token("alice"), start)
	pro(&p)
	apple.AddTransaction(p)
	a := w.notify("aa1c1c3e-0000-4000-8000-000000000011", "SUBSCRIBED", tx)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "pro", w.entitlement("alice").Tier)
	require.Equal(t, http.StatusOK, w.notify("aa1c1c3e-0000-4000-8000-000000000012", "CONSUMPTION_REQUEST", tx).status)

	_, stderr, code := runJob(t, "consumption-answers", "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []serverapi.ConsumptionInfo{{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered,
		RefundPreference: serverapi.RefundGrantProrated, SampleContentProvided: true}}, apple.Consumption()["6100001"])
}

// With refund_preference grant_prorated, an unspent pack's answer is a full
// refund (Apple refuses GRANT_PRORATED with a consumptionPercentage of 0).
// An answer Apple refuses for good is recorded rejected, with Apple's
// errorCode, once, and not sent again.
func TestEndToEndConsumptionProratedAndRefused(t *testing.T) {
	w, apple := newWorldWithApple(t, "jobs:\n  consumption_answers: {refund_preference: grant_prorated, customer_consented: true}\n")
	w.entitlement("alice")
	bought := time.Now().Add(-time.Hour)
	for i, id := range []string{"6200001", "6200002"} {
		tx := w.transaction(id, w.tokens.Token("alice"), bought)
		require.Equal(t, http.StatusOK, w.notify(fmt.Sprintf("aa1c1c3e-0000-4000-8000-00000000002%d", i), "ONE_TIME_CHARGE", tx).status)
		require.Equal(t, http.StatusOK, w.notify(fmt.Sprintf("aa1c1c3e-0000-4000-8000-00000000003%d", i), "CONSUMPTION_REQUEST", tx).status)
	}
	// Apple knows the first; the second it does not (404): refused for good.
	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "6200001", w.tokens.Token("alice"), bought))

	_, stderr, code := runJob(t, "consumption-answers", "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, []serverapi.ConsumptionInfo{{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered,
		ConsumptionPercentage: serverapi.Percent(0), RefundPreference: serverapi.RefundGrantFull, SampleContentProvided: true}},
		apple.Consumption()["6200001"])
	require.Contains(t, stderr, `"rejected":1`, "the refusal is counted")
	requests := apple.Requests()

	_, stderr, code = runJob(t, "consumption-answers", "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, requests, apple.Requests(), "nothing is sent again")
	require.Equal(t, []string{"rejected serverapi: App Store Server API answered 404 Not Found (errorCode 4040010): Transaction id not found."},
		w.consumptionAnswers("6200002"))
}

// consumptionAnswers reads the status and last error of the answers to
// transaction id's consumption requests, beside the live server.
func (w *world) consumptionAnswers(id string) []string {
	w.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "creditsd.db")+"?mode=ro")
	require.NoError(w.t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT status || ' ' || last_error FROM consumption_answers WHERE transaction_id = ? ORDER BY updated_at`, id)
	require.NoError(w.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(w.t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(w.t, rows.Err())
	return out
}

// Apple's 12 hours count from when it sent the request. Two requests whose
// webhook calls failed reach creditsd now, through reconcile: the one Apple
// sent 11 hours ago is answered; the one it sent 13 hours ago is past its
// deadline, so nothing is sent, and it is recorded expired, not left
// unrecorded.
func TestEndToEndConsumptionDeadlineFromSignedDate(t *testing.T) {
	ca, err := devca.New(devca.Options{Now: time.Now().Add(-48 * time.Hour)})
	require.NoError(t, err)
	w, apple := newWorldWithAppleCA(t, ca, consented)
	w.entitlement("alice")
	bought := time.Now().Add(-20 * time.Hour)
	for i, sent := range []time.Duration{13 * time.Hour, 11 * time.Hour} {
		id := fmt.Sprintf("630000%d", i+1)
		tx := w.transaction(id, w.tokens.Token("alice"), bought)
		require.Equal(t, http.StatusOK, w.notify(fmt.Sprintf("aa1c1c3e-0000-4000-8000-00000000004%d", i), "ONE_TIME_CHARGE", tx).status)
		apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, id, w.tokens.Token("alice"), bought))
		at := time.Now().Add(-sent)
		jws, err := ca.Sign(devca.NotificationPayload{NotificationType: "CONSUMPTION_REQUEST", Version: "2.0",
			NotificationUUID: fmt.Sprintf("aa1c1c3e-0000-4000-8000-00000000005%d", i), SignedDate: devca.Millis(at),
			Data: &devca.NotificationData{BundleID: e2eBundle, Environment: receipts.Sandbox, SignedTransactionInfo: tx}})
		require.NoError(t, err)
		apple.AddNotification(jws, at, true)
	}
	_, stderr, code := runJob(t, "reconcile", "--config", w.config)
	require.Equal(t, 0, code, stderr)

	_, stderr, code = runJob(t, "consumption-answers", "--config", w.config)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, `"expired":1`)
	require.Empty(t, apple.Consumption()["6300001"], "nothing is sent past the deadline")
	require.Len(t, apple.Consumption()["6300002"], 1, "the request still in time is answered")
	answers := w.consumptionAnswers("6300001")
	require.Len(t, answers, 1)
	require.Contains(t, answers[0], "expired Apple's deadline passed at")
}

// A window longer than Sandbox keeps (30 days) does not fail the run: the
// Sandbox request starts an hour inside what Apple keeps, and a
// notification missed 20 days ago is still found.
func TestEndToEndReconcileWindowBeyondSandboxHistory(t *testing.T) {
	w, apple := newWorldWithApple(t, "jobs:\n  reconcile: {window: 4319h, enabled: false}\n") // run by hand only
	w.entitlement("alice")
	bought := time.Now().Add(-20 * 24 * time.Hour)
	tx := w.transaction("6000101", w.tokens.Token("alice"), bought, signedNow)
	apple.AddNotification(w.signedNotification("aa1c1c3e-0000-4000-8000-000000000101", "ONE_TIME_CHARGE", tx), bought, true)

	stdout, stderr, code := runJob(t, "reconcile", "--config", w.config)
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	require.Contains(t, stdout, "reconcile: ok ")
	require.Contains(t, stdout, `"new":1`)
	require.Equal(t, int64(10), w.entitlement("alice").Credits.Balance)
}

// signedNow has Apple sign a transaction now, inside the test CA's
// validity, whenever it was bought.
func signedNow(p *devca.TransactionPayload) { p.SignedDate = devca.Millis(time.Now()) }

// Reconcile reads each environment's history from where the last run that
// read it to its end stopped, not just the window back: a REFUND that the
// webhook missed four days ago, while reconcile had failed for days (a bad
// key, say), is still applied, though the window is 72h.
func TestEndToEndReconcileCatchesUpAfterAGap(t *testing.T) {
	w, apple := newWorldWithApple(t, "jobs:\n  reconcile: {enabled: false}\n") // run by hand only
	token := w.tokens.Token("alice")
	w.entitlement("alice")
	bought := time.Now().Add(-6 * 24 * time.Hour)
	require.Equal(t, http.StatusOK, w.notify("aa1c1c3e-0000-4000-8000-000000000201", "ONE_TIME_CHARGE",
		w.transaction("6000201", token, bought, signedNow)).status)
	require.Equal(t, int64(10), w.entitlement("alice").Credits.Balance)

	// The last run that read Sandbox's history to its end did so five days ago.
	lastRead := time.Now().Add(-5 * 24 * time.Hour).Truncate(time.Millisecond)
	w.proc.stop(t)
	db, err := sqlite.Open(context.Background(), filepath.Join(w.dir, "creditsd.db"))
	require.NoError(t, err)
	db.Now = func() time.Time { return lastRead }
	id, err := db.ClaimJobRun(context.Background(), sqlite.JobClaim{Job: "reconcile", Slot: lastRead, Holder: "earlier", TTL: time.Minute})
	require.NoError(t, err)
	require.NoError(t, db.FinishJobRun(context.Background(), sqlite.JobFinish{RunID: id, Job: "reconcile", Holder: "earlier",
		Outcome: "ok", Counts: map[string]int64{"sandbox_from_ms": lastRead.Add(-72 * time.Hour).UnixMilli(), "sandbox_through_ms": lastRead.UnixMilli()}}))
	require.NoError(t, db.Close())
	w.proc = start(t, "serve", "--config", w.config)

	refunded := time.Now().Add(-4 * 24 * time.Hour)
	refund := w.transaction("6000201", token, bought, signedNow, func(p *devca.TransactionPayload) { p.RevocationDate = devca.Millis(refunded) })
	apple.AddNotification(w.signedNotification("aa1c1c3e-0000-4000-8000-000000000202", "REFUND", refund), refunded, true)

	apple.FailNext(http.StatusUnauthorized, "") // a run that fails reads nothing to its end
	stdout, _, code := runJob(t, "reconcile", "--config", w.config)
	require.Equal(t, 1, code, stdout)

	counts := func(stdout string) map[string]int64 {
		t.Helper()
		rest, ok := strings.CutPrefix(strings.TrimSpace(stdout), "reconcile: ok ")
		require.True(t, ok, stdout)
		var c map[string]int64
		require.NoError(t, json.Unmarshal([]byte(rest), &c), stdout)
		return c
	}
	before := time.Now()
	stdout, stderr, code := runJob(t, "reconcile", "--config", w.config)
	require.Equal(t, 0, code, "%s\n%s", stdout, stderr)
	c := counts(stdout)
	require.Equal(t, lastRead.Add(-time.Hour).UnixMilli(), c["sandbox_from_ms"], "from the last read's end, less an hour")
	require.GreaterOrEqual(t, c["sandbox_through_ms"], before.UnixMilli())
	require.Equal(t, int64(1), c["new"], stdout)
	require.Equal(t, int64(0), w.entitlement("alice").Credits.Balance, "the refund took the pack back")

	// Caught up, the next run reads the window back again.
	before = time.Now()
	stdout, _, code = runJob(t, "reconcile", "--config", w.config)
	require.Equal(t, 0, code, stdout)
	c = counts(stdout)
	require.GreaterOrEqual(t, c["sandbox_from_ms"], before.Add(-72*time.Hour).UnixMilli())
	require.LessOrEqual(t, c["sandbox_from_ms"], time.Now().Add(-72*time.Hour).UnixMilli())
	require.Equal(t, int64(0), c["seen"], stdout)
}
