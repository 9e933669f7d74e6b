package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// postReceipt posts an app receipt of these purchases as user's app does.
func (w *world) postReceipt(user string, purchases ...fakeappstore.InApp) answer {
	w.t.Helper()
	return w.do("POST", "/v1/me/transactions", w.token(user, "", time.Minute),
		map[string]string{"app_receipt": fakeappstore.AppReceiptOf(w.t, purchases...)})
}

// pack is a purchase of the pack bought at bought and signed now: the test
// CA's leaf is younger than some purchases here.
func pack(id, token string, bought time.Time) devca.TransactionPayload {
	p := devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, id, token, bought)
	p.SignedDate = devca.Millis(time.Now())
	return p
}

// lotTransactionIDs are the transaction ids of a user's lots.
func lotTransactionIDs(e entitlements.Entitlement) []string {
	var ids []string
	for _, l := range e.Credits.Lots {
		ids = append(ids, l.TransactionID)
	}
	return ids
}

// A pack refunded before it was ever claimed stays in the receipt (the app
// finished it only once it showed, and it never does); a subscription
// bought after it is claimed beside it and sets the tier. Claiming one
// purchase only, the receipt resolved to the refunded pack every time and
// answered 200 with the free tier.
func TestEndToEndAppReceiptClaimsBesideAStalePack(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	token, now := w.tokens.Token("alice"), time.Now()
	refunded := pack("5300001", token, now.Add(-48*time.Hour))
	refunded.RevocationDate = devca.Millis(now.Add(-24 * time.Hour))
	apple.AddTransaction(refunded)
	sub := devca.Consumable(e2eBundle, receipts.Sandbox, "com.example.pro.monthly", "5300002", token, now.Add(-time.Minute))
	sub.Type, sub.ExpiresDate = "Auto-Renewable Subscription", devca.Millis(now.AddDate(0, 1, 0))
	apple.AddTransaction(sub)

	a := w.postReceipt("alice",
		fakeappstore.InApp{TransactionID: "5300001", Purchased: now.Add(-48 * time.Hour)},
		fakeappstore.InApp{TransactionID: "5300002", Purchased: now.Add(-time.Minute), Expires: now.AddDate(0, 1, 0)})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, "pro", a.body["tier"], a.raw)
	require.Equal(t, float64(0), a.body["credits"].(map[string]any)["balance"], "the refunded pack adds nothing")
}

// Two packs the app has not finished are both claimed; one at a time, only
// the newer was ever fetched.
func TestEndToEndAppReceiptClaimsEveryUnfinishedPack(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	token, now := w.tokens.Token("alice"), time.Now()
	apple.AddTransaction(pack("5400001", token, now.Add(-2*time.Hour)))
	apple.AddTransaction(pack("5400002", token, now.Add(-time.Hour)))
	purchases := []fakeappstore.InApp{
		{TransactionID: "5400001", Purchased: now.Add(-2 * time.Hour)},
		{TransactionID: "5400002", Purchased: now.Add(-time.Hour)},
	}
	a := w.postReceipt("alice", purchases...)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(20), a.body["credits"].(map[string]any)["balance"], a.raw)

	a = w.postReceipt("alice", purchases...)
	require.Equal(t, http.StatusOK, a.status, "nothing new: %s", a.raw)
	require.Equal(t, float64(20), a.body["credits"].(map[string]any)["balance"], a.raw)
	require.Len(t, apple.Asked(), 2, "packs she holds are not asked of Apple again")
}

// A user's receipts may look up only so many purchases at Apple (thirty,
// then one every two minutes): a forged receipt names ten ids Apple does
// not know, each a call against the rate limit the jobs share. The fourth
// such receipt finds none left: it is refused 429 with Retry-After, and
// Apple is not asked. Another user is not held up by it.
func TestEndToEndAppReceiptBudget(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	now := time.Now()
	forged := func(first int) []fakeappstore.InApp {
		var inApps []fakeappstore.InApp
		for i := range receipts.MaxReceiptClaims {
			inApps = append(inApps, fakeappstore.InApp{TransactionID: strconv.Itoa(first + i), Purchased: now.Add(-time.Duration(i) * time.Hour)})
		}
		return inApps
	}
	for r := range receiptBurst / receipts.MaxReceiptClaims {
		a := w.postReceipt("mallory", forged(5700000+100*r)...)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
		require.Equal(t, "unknown_transaction", a.code())
	}
	asked := len(apple.Asked())
	require.Equal(t, receiptBurst, asked)

	a := w.postReceipt("mallory", forged(5709000)...)
	require.Equal(t, http.StatusTooManyRequests, a.status, a.raw)
	require.Equal(t, "too_many_receipt_lookups", a.code())
	require.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err, a.header)
	require.InDelta(t, (receipts.MaxReceiptClaims * receiptEvery).Seconds(), retry, 5, "the wait for the receipt's ten")
	require.Len(t, apple.Asked(), asked, "Apple was not asked")

	token := w.tokens.Token("alice")
	apple.AddTransaction(pack("5709900", token, now.Add(-time.Hour)))
	a = w.postReceipt("alice", fakeappstore.InApp{TransactionID: "5709900", Purchased: now.Add(-time.Hour)})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
}

// An App Store that rate-limits a receipt's lookup with a wait longer than
// the lookup has left is a 503 whose Retry-After is Apple's wait, so the
// app does not come back before Apple will answer.
func TestEndToEndAppReceiptUnavailablePassesAppleWait(t *testing.T) {
	w, apple := newWorldWithApple(t, noAppleJobs)
	apple.FailNext(http.StatusTooManyRequests, strconv.FormatInt(time.Now().Add(10*time.Minute).UnixMilli(), 10))
	a := w.postReceipt("alice", fakeappstore.InApp{TransactionID: "5709901", Purchased: time.Now().Add(-time.Hour)})
	require.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	require.Equal(t, "app_store_unavailable", a.code())
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err, a.header)
	require.InDelta(t, 600, retry, 5)
}

// A receipt of more purchases than MaxReceiptClaims claims the newest that
// many, each fetched once (in no set order: a few at a time); the older
// ones are not asked for.
func TestEndToEndAppReceiptClaimsAtMostTheBound(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	token, now := w.tokens.Token("alice"), time.Now()
	var purchases []fakeappstore.InApp
	var newest []string
	for i := range receipts.MaxReceiptClaims + 2 {
		id, bought := strconv.Itoa(5500001+i), now.Add(-time.Duration(i+1)*time.Hour)
		apple.AddTransaction(pack(id, token, bought))
		purchases = append(purchases, fakeappstore.InApp{TransactionID: id, Purchased: bought})
		if i < receipts.MaxReceiptClaims {
			newest = append(newest, id)
		}
	}
	a := w.postReceipt("alice", purchases...)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.ElementsMatch(t, newest, apple.Asked(), "the newest, once each (Sandbox only), a few at a time")
	require.ElementsMatch(t, newest, lotTransactionIDs(w.entitlement("alice")))
}

// A receipt is unsigned, so one that names other users' purchases claims
// none of them, whatever else it holds: each is refused as it would be
// alone and passed over. When nothing could be claimed, the answer is the
// refusal of the newest purchase.
func TestEndToEndAppReceiptForgedClaimsNothingOfOthers(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	now := time.Now()
	alices := pack("5600001", w.tokens.Token("alice"), now.Add(-time.Hour))
	apple.AddTransaction(alices)
	unbound := pack("5600002", "", now.Add(-2*time.Hour))
	apple.AddTransaction(unbound)
	apple.AddTransaction(pack("5600003", w.tokens.Token("bob"), now.Add(-3*time.Hour)))
	alicesInApp := fakeappstore.InApp{TransactionID: "5600001", Purchased: now.Add(-time.Hour)}
	unboundInApp := fakeappstore.InApp{TransactionID: "5600002", Purchased: now.Add(-2 * time.Hour)}

	a := w.postReceipt("bob", unboundInApp, alicesInApp)
	require.Equal(t, http.StatusForbidden, a.status, a.raw)
	require.Equal(t, "transaction_not_yours", a.code(), "the newest purchase's refusal")
	a = w.postReceipt("bob", unboundInApp, fakeappstore.InApp{TransactionID: "5600001", Purchased: now.Add(-3 * time.Hour)})
	require.Equal(t, "transaction_not_bound", a.code(), "the newest purchase's refusal: %s", a.raw)

	a = w.postReceipt("bob", alicesInApp, unboundInApp, fakeappstore.InApp{TransactionID: "5600003", Purchased: now.Add(-3 * time.Hour)})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, []string{"5600003"}, lotTransactionIDs(w.entitlement("bob")), "his own pack only")

	// Alice's pack, and the token-less one, are still hers to claim.
	for _, p := range []devca.TransactionPayload{alices, unbound} {
		jws, err := w.ca.Sign(p)
		require.NoError(t, err)
		a = w.submit("alice", jws)
		require.Equal(t, http.StatusCreated, a.status, a.raw)
	}
	require.Equal(t, int64(20), w.entitlement("alice").Credits.Balance)
}

// A long-time subscriber's receipt keeps every period she renewed: past
// 64 KiB, it still claims her pack and her current period (the body may
// be up to 1 MiB here), and a body past that is refused 413.
func TestEndToEndAppReceiptOfALongHistory(t *testing.T) {
	w, apple := newWorldWithApple(t, "")
	token, now := w.tokens.Token("alice"), time.Now()
	const periods = 900 // weekly renewals, 17 years
	var inApps []fakeappstore.InApp
	for i := range periods {
		start := now.Add(-time.Duration(i) * 7 * 24 * time.Hour)
		inApps = append(inApps, fakeappstore.InApp{TransactionID: strconv.Itoa(5400000 + i), Purchased: start, Expires: start.Add(7 * 24 * time.Hour)})
	}
	current := devca.Consumable(e2eBundle, receipts.Sandbox, "com.example.pro.monthly", "5400000", token, now)
	current.Type, current.ExpiresDate = "Auto-Renewable Subscription", devca.Millis(now.Add(7*24*time.Hour))
	apple.AddTransaction(current)
	apple.AddTransaction(pack("5409999", token, now.Add(-time.Hour)))
	inApps = append(inApps, fakeappstore.InApp{TransactionID: "5409999", Purchased: now.Add(-time.Hour)})

	receipt := fakeappstore.AppReceiptOf(t, inApps...)
	require.Greater(t, len(receipt), entitlements.MaxBodyBytes, "a receipt past the other bodies' cap")
	a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": receipt})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, "pro", a.body["tier"], a.raw)
	require.Equal(t, []string{"5409999"}, lotTransactionIDs(w.entitlement("alice")))

	huge := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute),
		`{"app_receipt":"`+strings.Repeat("A", entitlements.MaxTransactionBodyBytes)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, huge.status, huge.raw)
	require.Equal(t, "body_too_large", huge.code())
}
