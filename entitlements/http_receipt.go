package entitlements

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditsd/creditsd/receipts"
)

// ErrUnknownTransaction is a ReceiptLookup's answer for a transaction id
// that the App Store does not know.
var ErrUnknownTransaction = Errorf(KindUnprocessable, "unknown_transaction", "the App Store knows no such transaction")

// ReceiptLookup fetches the Apple-signed transaction that a StoreKit 1 app
// receipt names by id (the App Store Server API client does), safe for
// concurrent use: a receipt's purchases are asked for a few at a time. One
// the App Store does not know is ErrUnknownTransaction; any other error
// means the App Store did not answer; an *Error among them with RetryAfter
// set says how long the App Store asked to be left alone.
type ReceiptLookup interface {
	SignedTransaction(ctx context.Context, transactionID string) (string, error)
}

// fetched is one purchase of a receipt as the App Store answered it: the
// signed transaction, or the refusal that stands for it.
type fetched struct {
	signed  string
	refusal error
}

// claimReceipt claims for userID each purchase a StoreKit 1 app receipt
// holds to claim (receipts.TransactionIDsFromAppReceipt), newest first, as
// an unproven claim: the receipt's signature is not checked. It reports
// whether any of them gave something new. Those asked of Apple are chosen
// by toAsk; the ones the caller holds for good count as claimed. A
// purchase that is refused (not the caller's, unknown, not sold here: a
// 4xx alone) is passed over, so that a pack that can never be claimed does
// not hide the purchases beside it; when none could be claimed, the newest
// one's refusal is the answer, as it would be for that purchase alone (or
// a 429, when the budget left some out).
func (h *Handler) claimReceipt(ctx context.Context, userID, appReceipt string, start time.Time) (bool, error) {
	if h.Receipts == nil {
		return false, Errorf(KindUnprocessable, "app_receipt_unsupported",
			"StoreKit 1 app receipts need the App Store Server API, which this server does not have configured; send signed_transaction (StoreKit 2 jwsRepresentation)")
	}
	ids, err := receipts.TransactionIDsFromAppReceipt(appReceipt)
	if err != nil {
		return false, err
	}
	ask, held, left, err := h.toAsk(ctx, userID, ids)
	if err != nil || len(ask) == 0 {
		return false, err
	}
	found, err := h.fetchReceipt(ctx, ask, start)
	if err != nil {
		return false, err
	}
	granted, claimed := false, held
	var refusal error
	for _, f := range found {
		gave, err := false, f.refusal
		if err == nil {
			gave, err = h.claimSigned(ctx, userID, f.signed, true)
		}
		switch {
		case err == nil:
			granted, claimed = granted || gave, true
		case !refused(err):
			return false, err
		case refusal == nil:
			refusal = err
		}
	}
	switch {
	case !claimed && left > 0:
		// The purchases the budget left out may hold one of hers: a
		// refusal, final for the receipt, could make the app finish it.
		return false, tooManyLookups(left)
	case !claimed:
		return false, refusal
	}
	return granted, nil
}

// toAsk picks, of a receipt's ids (newest first), those to ask Apple
// about. A purchase the caller already holds for good
// (Store.SettledPurchases) is not: an app that sends its receipt at every
// launch costs Apple nothing more; held says whether there was one. The
// others are, as many as the caller's ReceiptBudget allows, newest first,
// since anyone may forge a receipt naming ten ids: the purchase just made
// comes first, and those the budget leaves out wait for a later receipt,
// in left's time. With nothing left in the budget the answer is 429.
func (h *Handler) toAsk(ctx context.Context, userID string, ids []string) (ask []string, held bool, left time.Duration, err error) {
	settled, err := h.Store.SettledPurchases(ctx, userID, ids)
	if err != nil {
		return nil, false, 0, err
	}
	for _, id := range ids {
		if !settled[id] {
			ask = append(ask, id)
		}
	}
	held = len(ask) < len(ids)
	if len(ask) == 0 {
		return nil, held, 0, nil
	}
	took, wait := h.ReceiptBudget.Take(userID, len(ask), h.Now())
	if took == 0 {
		return nil, held, 0, tooManyLookups(wait)
	}
	return ask[:took], held, wait, nil
}

// tooManyLookups refuses a receipt the caller's budget cannot ask about
// now; wait is when it can ask about all of it.
func tooManyLookups(wait time.Duration) error {
	return &Error{Kind: KindTooManyRequests, Code: "too_many_receipt_lookups", RetryAfter: wait,
		Detail: fmt.Sprintf("this user's app receipts have asked the App Store about as many unclaimed purchases as this service allows in a while; try again in %s", ceilSeconds(wait))}
}

// fetchReceipt asks the App Store for each id, fetchAtOnce at a time, by
// ReceiptTimeout after start (the request's arrival: a slow upload of the
// body must not eat the time left to answer). All are fetched before any
// is claimed: the timeout is Apple's alone, the claims run on the
// request's own context, and an App Store that fails for any of them is a
// 503 for the receipt, which the app tries again, rather than an answer
// after which the app would finish a purchase that was not claimed. The
// first failure stops the asking, and is what the log says.
func (h *Handler) fetchReceipt(ctx context.Context, ids []string, start time.Time) ([]fetched, error) {
	failed, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	lookup := failed
	if h.ReceiptTimeout > 0 {
		var cancel context.CancelFunc
		lookup, cancel = context.WithDeadline(failed, start.Add(h.ReceiptTimeout))
		defer cancel()
	}
	found := make([]fetched, len(ids))
	var answered atomic.Int64
	var wg sync.WaitGroup
	slots := make(chan struct{}, fetchAtOnce)
	for i, id := range ids {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			if lookup.Err() != nil {
				return // the receipt is a 503 already: nothing more is asked
			}
			var err error
			if found[i], err = h.fetchOne(lookup, id); err != nil {
				fail(fmt.Errorf("transaction %s: %w", id, err))
				return
			}
			answered.Add(1)
		})
	}
	wg.Wait()
	if answered.Load() == int64(len(ids)) {
		return found, nil
	}
	// Unless the app went away first: then no answer is read, nor is the
	// App Store to blame.
	if cause := context.Cause(lookup); cause != context.Cause(ctx) {
		h.Log.WarnContext(ctx, "App Store Server API", "err", cause)
	}
	unavailable := Errorf(KindUnavailable, "app_store_unavailable", "the App Store Server API did not answer; try again later")
	var asked *Error
	if errors.As(context.Cause(lookup), &asked) {
		unavailable.RetryAfter = asked.RetryAfter // the App Store's own wait (a 429's Retry-After)
	}
	return nil, unavailable
}

// fetchAtOnce is how many of a receipt's purchases are asked for at once:
// one after another, ten purchases of a Sandbox receipt, each asked of
// Production first, took twenty round trips of the 20 s.
const fetchAtOnce = 4

// fetchOne is one purchase of a receipt as the App Store answers it; an
// error is the App Store's failure.
func (h *Handler) fetchOne(ctx context.Context, id string) (fetched, error) {
	signed, err := h.Receipts.SignedTransaction(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownTransaction):
		return fetched{refusal: Errorf(KindUnprocessable, "unknown_transaction",
			"the App Store knows no transaction %s, which the receipt names", id)}, nil
	case err != nil:
		return fetched{}, err
	}
	return fetched{signed: signed}, nil
}

// refused says whether err refuses one transaction, as a 4xx would answer
// it alone, rather than says the service failed (500, 503), which ends the
// claim of the receipt.
func refused(err error) bool {
	var de *Error
	var ve *receipts.Error
	return errors.As(err, &ve) && !ve.Retryable() || errors.As(err, &de) && de.Kind != KindInternal && de.Kind != KindUnavailable &&
		de.Kind != KindTooManyRequests
}
