package entitlements

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
)

// signedBy is a TransactionVerifier that knows the transactions it maps
// by their signed form, and finds anything else malformed.
type signedBy map[string]*receipts.Transaction

func (v signedBy) VerifyTransaction(signed string) (*receipts.Transaction, error) {
	if t, ok := v[signed]; ok {
		return t, nil
	}
	return nil, &receipts.Error{Code: receipts.CodeMalformed, Detail: "not a JWS"}
}

// claimingStore is settledStore that claims every purchase, recording it,
// but fails with a database error for the transaction id fail.
type claimingStore struct {
	settledStore
	fail    string
	mu      *sync.Mutex
	claimed *[]string
}

func newClaimingStore(fail string) claimingStore {
	return claimingStore{fail: fail, mu: new(sync.Mutex), claimed: new([]string)}
}

func (s claimingStore) ClaimPurchase(_ context.Context, _, _ string, p Purchase, _ Grant) (bool, error) {
	if p.TransactionID == s.fail {
		return false, errors.New("sqlite: database is locked")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.claimed = append(*s.claimed, p.TransactionID)
	return true, nil
}

func (s claimingStore) claims() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), *s.claimed...)
}

const claimPack = "com.example.pack10"

// receiptClaimHandler is a Handler whose App Store answers "jws-<id>" for
// ids 1 and 2, each a pack bought without an app account token.
func receiptClaimHandler(apple ReceiptLookup, store Store) *Handler {
	now := time.Now()
	verifier := signedBy{}
	for _, id := range []string{"1", "2"} {
		verifier["jws-"+id] = &receipts.Transaction{TransactionID: id, OriginalTransactionID: id, ProductID: claimPack,
			Type: "Consumable", Environment: receipts.Sandbox, Quantity: 1, PurchaseDate: now.Add(-time.Minute), SignedDate: now}
	}
	return &Handler{
		Receipts:       apple,
		Verifier:       verifier,
		Store:          store,
		Catalog:        Catalog{claimPack: {ID: claimPack, Credits: 10, ExpiresAfter: Expiry{Never: true}}},
		Now:            time.Now,
		Log:            slog.New(slog.DiscardHandler),
		ReceiptTimeout: 5 * time.Second,
	}
}

// A claim of one of a receipt's purchases that fails in the service (the
// database, not a refusal of that purchase) fails the receipt: passed over
// as a refusal would be, the receipt was answered 201 for the other
// purchase, the app finished both, and the failed one was never claimed.
func TestPostTransactionReceiptClaimFailureFailsTheReceipt(t *testing.T) {
	for _, fail := range []string{"2", "1"} {
		store := newClaimingStore(fail)
		h := receiptClaimHandler(appleAnswers{"1": "jws-1", "2": "jws-2"}, store)
		w := postReceipt(t, h, "alice", receiptOf(t, "2", "1"), 5*time.Second)
		require.Equal(t, http.StatusInternalServerError, w.Code, "claim of %s failed: %s", fail, w.Body.String())
		require.Contains(t, w.Body.String(), `"code":"internal"`)
	}

	store := newClaimingStore("")
	h := receiptClaimHandler(appleAnswers{"1": "jws-1", "2": "jws-2"}, store)
	w := postReceipt(t, h, "alice", receiptOf(t, "2", "1"), 5*time.Second)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.ElementsMatch(t, []string{"1", "2"}, store.claims())
}

// afterOneApple answers purchase 2, and fails purchase 1 only once 2 has
// been answered: the App Store answered some of the receipt, not all.
type afterOneApple struct{ answered chan struct{} }

func (a afterOneApple) SignedTransaction(ctx context.Context, id string) (string, error) {
	if id == "2" {
		defer close(a.answered)
		return "jws-2", nil
	}
	select {
	case <-a.answered:
		return "", errors.New("500 from Apple, after the client's retries")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// A receipt whose purchases the App Store answered only in part is a 503,
// with nothing claimed, even when the part it answered could be: the
// answer would let the app finish the purchase it did not answer.
func TestPostTransactionReceiptPartlyAnsweredClaimsNothing(t *testing.T) {
	store := newClaimingStore("")
	h := receiptClaimHandler(afterOneApple{answered: make(chan struct{})}, store)
	w := postReceipt(t, h, "alice", receiptOf(t, "2", "1"), 10*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"app_store_unavailable"`)
	require.Empty(t, store.claims(), "nothing is claimed from a receipt the App Store did not answer whole")
}
