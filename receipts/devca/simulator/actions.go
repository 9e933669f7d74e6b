package simulator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
)

// Sale is a purchase or a new subscription.
type Sale struct {
	User            string // for what the simulator prints
	AppAccountToken string // the token the app passed to purchase(options:)
	ProductID       string
	Environment     string
	Quantity        int64     // consumables; 0 means 1
	PurchasedAt     time.Time // zero means now
}

// subscriptionGroup is the one subscription group the simulator sells.
const subscriptionGroup = "21000001"

// Purchase sells a consumable: ONE_TIME_CHARGE.
func (s *Simulator) Purchase(sale Sale) (Event, error) {
	at, err := s.saleTime(sale)
	if err != nil {
		return Event{}, err
	}
	p := devca.Consumable(s.BundleID, sale.Environment, sale.ProductID, "", sale.AppAccountToken, at)
	if sale.Quantity != 0 {
		p.Quantity = sale.Quantity
	}
	if p.Quantity < 1 {
		return Event{}, fmt.Errorf("quantity %d: want 1 or more", p.Quantity)
	}
	rec := s.sell(&Record{User: sale.User, Payload: p})
	return s.sign(notice{typ: "ONE_TIME_CHARGE", rec: rec})
}

// Subscribe starts an auto-renewable subscription of one month from the
// purchase date: SUBSCRIBED / INITIAL_BUY.
func (s *Simulator) Subscribe(sale Sale) (Event, error) {
	at, err := s.saleTime(sale)
	if err != nil {
		return Event{}, err
	}
	p := devca.Consumable(s.BundleID, sale.Environment, sale.ProductID, "", sale.AppAccountToken, at)
	p.Type, p.SubscriptionGroupID = "Auto-Renewable Subscription", subscriptionGroup
	p.ExpiresDate = devca.Millis(nextPeriod(at))
	p.Price = 9990
	rec := s.sell(&Record{User: sale.User, Payload: p})
	rec.Payload.WebOrderLineItemID = webOrder(rec.Payload.TransactionID)
	return s.sign(notice{typ: "SUBSCRIBED", subtype: "INITIAL_BUY", rec: rec, renewal: renewalOf(rec.Payload, true)})
}

func (s *Simulator) saleTime(sale Sale) (time.Time, error) {
	now := s.now()
	switch {
	case sale.PurchasedAt.IsZero():
		return now, nil
	case sale.PurchasedAt.After(now):
		return time.Time{}, fmt.Errorf("purchase date %s is in the future", sale.PurchasedAt.Format(time.RFC3339))
	}
	return sale.PurchasedAt, nil
}

// Renew starts the next period of id's subscription where its newest period
// ends: DID_RENEW with a new transaction of the same original transaction.
func (s *Simulator) Renew(id string) (Event, error) {
	periods, err := s.periods(id)
	if err != nil {
		return Event{}, err
	}
	last := periods[len(periods)-1]
	p := last.Payload
	p.TransactionID, p.TransactionReason = "", "RENEWAL"
	p.PurchaseDate = p.ExpiresDate
	p.ExpiresDate = devca.Millis(nextPeriod(time.UnixMilli(p.PurchaseDate)))
	p.RevocationDate, p.RevocationReason, p.RevocationType, p.RevocationPercentage = 0, nil, "", 0
	rec := s.sell(&Record{User: last.User, Payload: p})
	rec.Payload.WebOrderLineItemID = webOrder(rec.Payload.TransactionID)
	return s.sign(notice{typ: "DID_RENEW", rec: rec, renewal: renewalOf(rec.Payload, true)})
}

// Expire ends id's subscription now, as if the customer had turned off
// auto-renew: EXPIRED / VOLUNTARY. Apple only sends it once the last period
// has run out, so every period still running (one, or more after an early
// Renew) is re-signed to end now; one that has not started ends as it
// starts. If none is running, the newest period is re-sent as it is.
func (s *Simulator) Expire(id string) ([]Event, error) {
	periods, err := s.periods(id)
	if err != nil {
		return nil, err
	}
	now := devca.Millis(s.now())
	running := slices.DeleteFunc(slices.Clone(periods), func(r *Record) bool { return r.Payload.ExpiresDate <= now })
	if len(running) == 0 {
		running = periods[len(periods)-1:]
	}
	var events []Event
	for _, rec := range running {
		rec.Payload.ExpiresDate = min(rec.Payload.ExpiresDate, max(now, rec.Payload.PurchaseDate))
		r := renewalOf(rec.Payload, false)
		r.ExpirationIntent = 1 // the customer cancelled
		ev, err := s.sign(notice{typ: "EXPIRED", subtype: "VOLUNTARY", rec: rec, renewal: r})
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// periods are the transactions of id's subscription, oldest period first.
func (s *Simulator) periods(id string) ([]*Record, error) {
	rec, err := s.record(id)
	if err != nil {
		return nil, err
	}
	if rec.Payload.ExpiresDate == 0 {
		return nil, fmt.Errorf("transaction %s (%s) is not a subscription", id, rec.Payload.ProductID)
	}
	var periods []*Record
	for _, r := range s.State.Transactions {
		if r.Payload.OriginalTransactionID == rec.Payload.OriginalTransactionID {
			periods = append(periods, r)
		}
	}
	slices.SortFunc(periods, func(a, b *Record) int { return cmp.Compare(a.Payload.PurchaseDate, b.Payload.PurchaseDate) })
	return periods, nil
}

// Refund revokes id: REFUND. percent 0 is a full refund (REFUND_FULL);
// 1–100 is REFUND_PRORATED, with revocationPercentage in milliunits.
func (s *Simulator) Refund(id string, percent int) (Event, error) {
	rec, err := s.record(id)
	if err != nil {
		return Event{}, err
	}
	if rec.Payload.RevocationDate != 0 {
		return Event{}, fmt.Errorf("transaction %s is already refunded", id)
	}
	if percent < 0 || percent > 100 {
		return Event{}, fmt.Errorf("refund of %d%%: want 1 to 100", percent)
	}
	reason := 0 // "other": Apple gives 1 only for an issue in the app
	p := &rec.Payload
	p.RevocationDate, p.RevocationReason, p.RevocationType = devca.Millis(s.now()), &reason, "REFUND_FULL"
	if percent > 0 {
		p.RevocationType, p.RevocationPercentage = "REFUND_PRORATED", int64(percent)*1000
	}
	return s.sign(notice{typ: "REFUND", rec: rec})
}

// ReverseRefund undoes id's refund: REFUND_REVERSED, the transaction
// re-signed without its revocation.
func (s *Simulator) ReverseRefund(id string) (Event, error) {
	rec, err := s.record(id)
	if err != nil {
		return Event{}, err
	}
	if rec.Payload.RevocationDate == 0 {
		return Event{}, fmt.Errorf("transaction %s is not refunded", id)
	}
	p := &rec.Payload
	p.RevocationDate, p.RevocationReason, p.RevocationType, p.RevocationPercentage = 0, nil, "", 0
	return s.sign(notice{typ: "REFUND_REVERSED", rec: rec})
}

// ConsumptionRequest says the customer asked Apple for a refund of id and
// Apple wants to know how much was used: CONSUMPTION_REQUEST.
func (s *Simulator) ConsumptionRequest(id string) (Event, error) {
	rec, err := s.record(id)
	if err != nil {
		return Event{}, err
	}
	return s.sign(notice{typ: "CONSUMPTION_REQUEST", rec: rec, reason: "UNINTENDED_PURCHASE"})
}

// Test is the notification App Store Connect's "Request a Test
// Notification" sends: TEST, with no transaction.
func (s *Simulator) Test(environment string) (Event, error) {
	if environment == "" {
		return Event{}, errors.New("test: no environment")
	}
	return s.sign(notice{typ: "TEST", env: environment})
}

// nextPeriod is where a one-month subscription period starting at t ends.
func nextPeriod(t time.Time) time.Time { return t.UTC().AddDate(0, 1, 0) }

// webOrder is a subscription period's webOrderLineItemId, derived from its
// transaction id so that it is as unique.
func webOrder(transactionID string) string { return "1" + transactionID[1:] }

// renewalOf is the renewal info Apple signs beside a subscription period.
func renewalOf(p devca.TransactionPayload, autoRenew bool) *devca.RenewalPayload {
	r := &devca.RenewalPayload{OriginalTransactionID: p.OriginalTransactionID, AutoRenewProductID: p.ProductID,
		ProductID: p.ProductID, Environment: p.Environment, RecentSubStartDate: p.OriginalPurchaseDate,
		AppAccountToken: p.AppAccountToken}
	if autoRenew {
		r.AutoRenewStatus, r.RenewalDate = 1, p.ExpiresDate
	}
	return r
}
