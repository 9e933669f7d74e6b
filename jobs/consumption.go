package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// ConsumptionStore is what consumption-answers needs of the database.
type ConsumptionStore interface {
	PendingConsumptionRequests(ctx context.Context, since, now time.Time, limit int) ([]sqlite.ConsumptionRequest, error)
	ConsumptionFactsFor(ctx context.Context, transactionID, environment string) (sqlite.ConsumptionFacts, error)
	RecordConsumptionAnswer(ctx context.Context, a sqlite.ConsumptionAnswer) error
}

// ConsumptionSender sends Consumption Information to Apple.
type ConsumptionSender interface {
	SendConsumptionInfo(ctx context.Context, environment, transactionID string, info serverapi.ConsumptionInfo) error
}

// Refund preferences creditsd can state.
const (
	PreferAuto          = "auto" // by consumption: none used → GRANT_FULL, all used → DECLINE, else GRANT_PRORATED
	PreferDecline       = "decline"
	PreferGrantFull     = "grant_full"
	PreferGrantProrated = "grant_prorated"
	PreferNone          = "none"
)

// ConsumptionPolicy is what creditsd tells Apple besides the ledger's facts.
type ConsumptionPolicy struct {
	CustomerConsented     bool   // the customer agreed to share consumption data (Apple needs true)
	SampleContentProvided bool   // the free daily allowance is a free sample
	RefundPreference      string // one of the Prefer… values
}

// consumptionDeadline is Apple's: answer within 12 hours of the request,
// counted from when Apple sent it (the notification's signedDate), not
// from when creditsd received it, which may be hours later (reconcile).
const consumptionDeadline = 12 * time.Hour

// ConsumptionAnswers answers every pending CONSUMPTION_REQUEST with how
// much of that lot was spent, well before Apple's 12-hour deadline; a
// failed send is retried with backoff at later runs, and every attempt is
// recorded. A request whose deadline passed before an answer was accepted
// is recorded expired, and nothing is sent.
func ConsumptionAnswers(store ConsumptionStore, sender ConsumptionSender, policy ConsumptionPolicy) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		if !policy.CustomerConsented {
			return nil, Skip("jobs.consumption_answers.customer_consented is not true (it defaults to false): " +
				"Apple accepts consumption data only with the customer's consent")
		}
		pending, err := store.PendingConsumptionRequests(ctx, now.Add(-consumptionDeadline), now, 500)
		if err != nil {
			return nil, err
		}
		res := Result{"pending": int64(len(pending)), "sent": 0, "retry": 0, "rejected": 0, "expired": 0}
		for _, req := range pending {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			var status string
			if now.Before(deadline(req)) {
				status, err = answerOne(ctx, store, sender, policy, req, now)
			} else {
				status, err = "expired", expire(ctx, store, req)
			}
			if err != nil {
				return res, err
			}
			res[status]++
		}
		return res, nil
	}
}

func answerOne(ctx context.Context, store ConsumptionStore, sender ConsumptionSender, policy ConsumptionPolicy,
	req sqlite.ConsumptionRequest, now time.Time) (string, error) {
	facts, err := store.ConsumptionFactsFor(ctx, req.TransactionID, req.Environment)
	if err != nil {
		return "", err
	}
	info := ConsumptionInfoFor(facts, policy)
	body, _ := json.Marshal(info) // a plain struct: cannot fail
	ans := sqlite.ConsumptionAnswer{Request: req, Status: "sent", Body: body}
	err = sender.SendConsumptionInfo(ctx, req.Environment, req.TransactionID, info)
	switch {
	case err == nil:
	case refused(err):
		// Sent again, it would be refused again until the deadline: kept
		// with Apple's errorCode and errorMessage instead.
		ans.Status, ans.Err = "rejected", err.Error()
	default:
		ans.Status, ans.Err = "retry", err.Error()
		ans.NextAttempt = nextAttempt(now, deadline(req), retryAfter(err, req.Attempts))
	}
	return ans.Status, store.RecordConsumptionAnswer(ctx, ans)
}

// nextAttempt is when a failed answer is sent again: after wait, or, when
// that would end past the deadline, halfway to it, so that the runs left
// keep trying. Giving up when the backoff (up to an hour) or a Retry-After
// reached past the deadline dropped answers Apple would still have taken:
// an outage that ended in the last hour left nothing sent. Past the
// deadline the next run records the request expired.
func nextAttempt(now, deadline time.Time, wait time.Duration) time.Time {
	if next := now.Add(wait); next.Before(deadline) {
		return next
	}
	return now.Add(deadline.Sub(now) / 2)
}

// deadline is when Apple stops waiting for req's answer.
func deadline(req sqlite.ConsumptionRequest) time.Time { return req.SignedAt.Add(consumptionDeadline) }

// expire records that req's deadline passed before it was answered.
func expire(ctx context.Context, store ConsumptionStore, req sqlite.ConsumptionRequest) error {
	why := fmt.Sprintf("Apple's deadline passed at %s (12 hours after it sent the request) before an answer was accepted",
		deadline(req).UTC().Format(time.RFC3339))
	return store.RecordConsumptionAnswer(ctx, sqlite.ConsumptionAnswer{Request: req, Status: "expired", Err: why})
}

// refused says whether err refuses the request itself, for good: Apple
// answered a status Retryable calls final (a 400, or a 404 for the
// transaction), or the client would not send it. A 401, or a 404 that
// names the app or no API at all, is left to retry: it is about our
// setup, not the request, and an operator may mend it in time.
func refused(err error) bool {
	var apiErr *serverapi.APIError
	if errors.As(err, &apiErr) {
		return !apiErr.Retryable() && !apiErr.Setup()
	}
	return errors.Is(err, serverapi.ErrInvalidRequest) || errors.Is(err, serverapi.ErrEnvironment)
}

// retryAfter is Apple's Retry-After if it gave one, else 1, 2, 4 … minutes
// up to an hour.
func retryAfter(err error, attempts int) time.Duration {
	var apiErr *serverapi.APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter
	}
	return min(time.Minute<<min(attempts, 6), time.Hour)
}

// ConsumptionInfoFor is the answer for a lot: delivered or not, and the
// share of it spent in milliunits (rounded down). For a subscription's
// period it is the answer Apple asks for: delivered if the period was kept
// for an owner (the tier was given), and no percentage, which Apple
// computes itself from the time elapsed.
func ConsumptionInfoFor(f sqlite.ConsumptionFacts, p ConsumptionPolicy) serverapi.ConsumptionInfo {
	info := serverapi.ConsumptionInfo{CustomerConsented: p.CustomerConsented, SampleContentProvided: p.SampleContentProvided,
		DeliveryStatus: serverapi.DeliveryUndeliveredOther}
	if f.Subscription {
		if f.Delivered {
			info.DeliveryStatus = serverapi.DeliveryDelivered
		}
		info.RefundPreference = subscriptionPreference(p.RefundPreference, f.Delivered)
		return info
	}
	var consumed, granted int64 // nothing delivered: nothing used
	share := 0
	if f.Delivered && f.Granted > 0 {
		info.DeliveryStatus = serverapi.DeliveryDelivered
		consumed, granted = min(max(f.Consumed, 0), f.Granted), f.Granted
		// consumed × 100000 / granted, exact and without overflow.
		hi, lo := bits.Mul64(uint64(consumed), 100000)
		q, _ := bits.Div64(hi, lo, uint64(f.Granted))
		share = int(q)
	}
	info.ConsumptionPercentage = serverapi.Percent(share)
	info.RefundPreference = preference(p.RefundPreference, consumed, granted)
	if info.RefundPreference == serverapi.RefundGrantProrated {
		info.RefundPreference = prorated(share)
	}
	return info
}

// prorated is GRANT_PRORATED for a share Apple takes with it: above 0 and
// below 100 %. Prorated, a share of 0 (nothing delivered, nothing used, or
// too little of a big pack to show in milliunits) refunds everything:
// GRANT_FULL; a share of 100 % refunds nothing: DECLINE.
func prorated(share int) string {
	switch {
	case share <= 0:
		return serverapi.RefundGrantFull
	case share >= 100000:
		return serverapi.RefundDecline
	}
	return serverapi.RefundGrantProrated
}

// subscriptionPreference is the refund preference policy gives for a
// subscription's period. auto asks for a prorated refund of a period that
// was delivered (Apple prorates it by the time elapsed, so the customer
// gets back what is left of it) and a full one for a period nobody was
// given.
func subscriptionPreference(policy string, delivered bool) string {
	switch policy {
	case PreferDecline:
		return serverapi.RefundDecline
	case PreferGrantFull:
		return serverapi.RefundGrantFull
	case PreferNone:
		return ""
	}
	if !delivered {
		return serverapi.RefundGrantFull
	}
	return serverapi.RefundGrantProrated
}

// preference is the refund preference policy gives for a lot of which
// consumed of granted credits were used. auto decides on the credits, not
// on the rounded-down percentage (which is 99999, not 100 %, for all but a
// credit of a pack of more than 100,000); ConsumptionInfoFor then turns a
// GRANT_PRORATED that Apple would refuse into what it means (prorated).
func preference(policy string, consumed, granted int64) string {
	switch policy {
	case PreferDecline:
		return serverapi.RefundDecline
	case PreferGrantFull:
		return serverapi.RefundGrantFull
	case PreferGrantProrated:
		return serverapi.RefundGrantProrated
	case PreferNone:
		return ""
	}
	switch {
	case consumed == 0:
		return serverapi.RefundGrantFull
	case consumed >= granted:
		return serverapi.RefundDecline
	}
	return serverapi.RefundGrantProrated
}
