package entitlements

import (
	"time"

	"github.com/creditsd/creditsd/receipts"
)

// Purchase is a verified Apple transaction, as the ledger records it.
type Purchase struct {
	TransactionID         string
	OriginalTransactionID string
	ProductID             string
	Type                  string
	Environment           string
	AppAccountToken       string // lower-case when a UUID, kept as sent when not (it then matches no user); "" when the app set none
	Quantity              int64
	PurchaseDate          time.Time
	ExpiresDate           time.Time // subscriptions only
	RevocationDate        time.Time
	RevocationType        string // REFUND_FULL, REFUND_PRORATED, FAMILY_REVOKE; "" means full
	RevocationPercent     int64  // milliunits, for REFUND_PRORATED
	Upgraded              bool   // isUpgraded: the customer moved to another subscription; this period sets no tier
	SignedDate            time.Time
	JWS                   string // as Apple signed it; its payload has every field

	// Unproven: the claimant holds no signed proof of this transaction,
	// only its id (an app receipt, whose signature is not checked). Such
	// a claim may take only what is already the claimant's by token,
	// owner or subscription (ErrNotBound).
	Unproven bool
}

// ErrNotBound refuses an unproven claim of a transaction that is nobody's
// yet: anyone may forge an app receipt naming any transaction id, so only
// Apple's signed appAccountToken (StoreKit 1's applicationUsername) ties
// such a purchase to a user.
func ErrNotBound(transactionID string) error {
	return Errorf(KindForbidden, "transaction_not_bound",
		"transaction %s carries no appAccountToken, and an app receipt does not prove who bought it; "+
			"set applicationUsername to the user's app_account_token when buying with StoreKit 1", transactionID)
}

// PurchaseFrom converts a verified transaction. A prorated refund of 0 %
// is no revocation: Apple rounds revocationPercentage to a milliunit, so a
// share too small to show is 0, and such a refund takes nothing back (read
// as a revocation with no share, it had taken the whole pack). A later
// version that refunds more is a refund like any other; one of 0 % after a
// refund reverses it. A REFUND_PRORATED without any percentage still
// revokes it all, as before: only the 0 Apple wrote means nothing.
func PurchaseFrom(t *receipts.Transaction) Purchase {
	revoked := t.RevocationDate
	if t.RevocationType == "REFUND_PRORATED" && t.RevocationPercentage == 0 && t.RevocationPercentageGiven() {
		revoked = time.Time{}
	}
	return Purchase{
		TransactionID:         t.TransactionID,
		OriginalTransactionID: t.OriginalTransactionID,
		ProductID:             t.ProductID,
		Type:                  t.Type,
		Environment:           t.Environment,
		AppAccountToken:       NormalizeToken(t.AppAccountToken),
		Quantity:              t.Quantity,
		PurchaseDate:          t.PurchaseDate,
		ExpiresDate:           t.ExpiresDate,
		RevocationDate:        revoked,
		RevocationType:        t.RevocationType,
		RevocationPercent:     t.RevocationPercentage,
		Upgraded:              t.IsUpgraded,
		SignedDate:            t.SignedDate,
		JWS:                   t.JWS,
	}
}

// Outcome is what a purchase did to the ledger.
type Outcome string

// Outcomes of a purchase.
const (
	OutcomeGranted      Outcome = "granted"      // a lot was created
	OutcomePending      Outcome = "pending_user" // waits for its user (token seen, user not yet) or claimant (no token)
	OutcomeRevoked      Outcome = "revoked"      // refunded or revoked before it was granted: adds nothing
	OutcomeExpired      Outcome = "expired"      // its lot would already have expired: adds nothing
	OutcomeSubscription Outcome = "subscription" // a tier product: recorded for the tier, no lot
	OutcomeUnknown      Outcome = "unknown_product"
)

// Grant is the lot a purchase earns, decided before any storage.
type Grant struct {
	Outcome   Outcome
	Tier      string // the tier a subscription product sets
	Credits   int64
	GrantedAt time.Time
	ExpiresAt *time.Time
}

// PlanGrant decides what purchase p earns at now: a lot of product credits ×
// quantity, granted at the purchase date and expiring after the product's
// lifetime, or nothing (revoked, already expired, not a credit pack).
func PlanGrant(p Purchase, catalog Catalog, now time.Time) (Grant, error) {
	prod, ok := catalog[p.ProductID]
	switch {
	case !ok:
		return Grant{Outcome: OutcomeUnknown}, nil
	case prod.Credits == 0:
		return Grant{Outcome: OutcomeSubscription, Tier: prod.Tier}, nil
	case !p.RevocationDate.IsZero() && p.RefundPercent() == 100000:
		return Grant{Outcome: OutcomeRevoked}, nil
	}
	// A refund of part of the pack (REFUND_PRORATED) still earns the lot:
	// the store applies the refund to it as it makes it, as it would have
	// had the purchase arrived before its refund.
	credits, err := LotCredits(prod, p.Quantity)
	if err != nil {
		return Grant{}, Errorf(KindUnprocessable, "invalid_quantity", "transaction %s: %v", p.TransactionID, err)
	}
	g := Grant{Outcome: OutcomeGranted, Credits: credits, GrantedAt: p.PurchaseDate.UTC()}
	if at, ok := prod.ExpiresAfter.ExpiresAt(p.PurchaseDate); ok {
		g.ExpiresAt = &at
		if !now.Before(at) {
			g.Outcome = OutcomeExpired
		}
	}
	return g, nil
}

// RefundPercent is the share of the purchase a revocation takes back, in
// milliunits: all of it unless Apple says the refund was prorated.
// (Without a revocation it means nothing.)
func (p Purchase) RefundPercent() int64 {
	if p.RevocationType == "REFUND_PRORATED" && p.RevocationPercent > 0 && p.RevocationPercent < 100000 {
		return p.RevocationPercent
	}
	return 100000
}

// PartRefunded is the share a revocation of part of the purchase takes
// back (1 to 99999 milliunits), if p is refunded in part.
func (p Purchase) PartRefunded() (int64, bool) {
	pct := p.RefundPercent()
	return pct, !p.RevocationDate.IsZero() && pct < 100000
}
