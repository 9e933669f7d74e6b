package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// A StoreKit 1 app receipt is claimed through the App Store Server API: the
// transaction id is read locally, fetched from (a fake of) Apple's API,
// verified like any other signed transaction, and granted once.
func TestEndToEndAppReceipt(t *testing.T) {
	w, apple := newWorldWithApple(t, noAppleJobs)

	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "5000001", w.tokens.Token("alice"), time.Now()))
	body := map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "5000001")}
	a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Equal(t, http.StatusOK, a.status, "a second submission grants nothing")

	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "5999999")})
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "unknown_transaction", a.code())
	// The receipt is unsigned, so its id is the client's: one Apple refuses
	// (400, not a transaction id) is the client's mistake, not an outage.
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "not_a_number")})
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "unknown_transaction", a.code())
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": "bm90IGEgcmVjZWlwdA=="})
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, "invalid_app_receipt", a.code())
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "5000002")})
	require.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	require.Equal(t, "app_store_unavailable", a.code())
}

// A lookup that could not end before the server's write timeout is
// answered 503 at once, so that the app tries again. Here Apple rate limits
// with a Retry-After 25 s away, in its own form (a UNIX time in
// milliseconds): it does not fit in the receipt's 20 s, and sleeping
// through it, as the client did, left 5 s to spare at best (the audit's two
// 429s of 16 s each outlived the write timeout: the app got no answer, and
// the claim was applied unseen).
func TestEndToEndAppReceiptAnswersInTime(t *testing.T) {
	w, apple := newWorldWithApple(t, noAppleJobs)
	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "5200001", w.tokens.Token("alice"), time.Now()))
	body := map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "5200001")}
	apple.FailNext(http.StatusTooManyRequests, strconv.FormatInt(time.Now().Add(25*time.Second).UnixMilli(), 10))
	start := time.Now()
	a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Less(t, time.Since(start), 5*time.Second, "the 429 is answered at once, not slept through")
	require.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	require.Equal(t, "app_store_unavailable", a.code())
	require.Equal(t, int64(0), w.entitlement("alice").Credits.Balance, "nothing is claimed behind the 503")

	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Equal(t, http.StatusCreated, a.status, "the app's next try: %s", a.raw)
}

// A receipt lists every purchase the app has not finished, and a
// subscriber's every period, for good: the one it claims is the purchase
// the app has just made, wherever the receipt puts it, even when a renewal
// came after it.
func TestEndToEndAppReceiptClaimsTheNewestPurchase(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	token := w.tokens.Token("alice")
	earlier, now := time.Now().Add(-2*time.Hour), time.Now()
	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "5100001", token, earlier))
	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "5100002", token, now.Add(-time.Hour)))
	older := fakeappstore.InApp{TransactionID: "5100001", Purchased: earlier}
	a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute),
		map[string]string{"app_receipt": fakeappstore.AppReceiptOf(t, older)})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])

	// A renewal (not a transaction the fake knows: fetching it would be 422)
	// listed first and newer than the pack bought an hour ago.
	renewal := fakeappstore.InApp{TransactionID: "5100009", Purchased: now, Expires: now.AddDate(0, 1, 0)}
	newer := fakeappstore.InApp{TransactionID: "5100002", Purchased: now.Add(-time.Hour)}
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute),
		map[string]string{"app_receipt": fakeappstore.AppReceiptOf(t, renewal, older, newer)})
	require.Equal(t, http.StatusCreated, a.status, "the new pack: %s", a.raw)
	require.Equal(t, float64(20), a.body["credits"].(map[string]any)["balance"])
}

// An app receipt's signature is not checked, so a receipt that names a
// transaction proves nothing about who bought it: a token-less transaction
// is refused on that path, where a forged receipt could otherwise take a
// purchase that waits for its claimant (pending_user).
func TestEndToEndAppReceiptNeedsTheBuyersToken(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	p := devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "7000001", "", time.Now())
	apple.AddTransaction(p)
	jws, err := w.ca.Sign(p)
	require.NoError(t, err)
	a := w.notify("8a1c1c3e-0000-4000-8000-000000007001", "ONE_TIME_CHARGE", jws)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "pending_user", a.body["outcome"], a.raw)

	a = w.do("POST", "/v1/me/transactions", w.token("bob", "", time.Minute),
		map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "7000001")})
	require.Equal(t, http.StatusForbidden, a.status, a.raw)
	require.Equal(t, "transaction_not_bound", a.code())
	require.Equal(t, int64(0), w.entitlement("bob").Credits.Balance)

	// The buyer's own app, holding Apple's signed transaction, still claims it;
	// her receipt naming it afterwards is answered, not refused.
	a = w.submit("alice", jws)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute),
		map[string]string{"app_receipt": fakeappstore.AppReceipt(t, "7000001")})
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])
}

// newWorldWithApple is a world whose app_store_api points at a fake App
// Store Server that signs with the world's CA.
// noAppleJobs keeps serve's scheduler from asking Apple anything (its
// start runs reconcile and consumption-answers once), for a test whose
// FailNext must reach the request it sends: the scheduler's calls took it
// first now and then.
const noAppleJobs = "jobs:\n  reconcile: {enabled: false}\n  consumption_answers: {enabled: false}\n"

func newWorldWithApple(t *testing.T, extraYAML string) (*world, *fakeappstore.Server) {
	return newWorldWithAppleCA(t, newCA(t), extraYAML)
}

// newWorldWithAppleCA is newWorldWithApple with a given test CA.
func newWorldWithAppleCA(t *testing.T, ca *devca.CA, extraYAML string) (*world, *fakeappstore.Server) {
	key, p8 := fakeappstore.GenerateKey(t)
	apple := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: e2eBundle, KeyID: "KEY123", IssuerID: "issuer-1", PublicKey: &key.PublicKey})
	p8File := filepath.Join(t.TempDir(), "AuthKey_KEY123.p8")
	require.NoError(t, os.WriteFile(p8File, p8, 0o600))
	return newWorldWith(t, ca, fmt.Sprintf(`app_store_api:
  key_id: KEY123
  issuer_id: issuer-1
  private_key_file: %s
  production_url: %s
  sandbox_url: %s
%s`, p8File, apple.URL, apple.SandboxURL, extraYAML)), apple
}
