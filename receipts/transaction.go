package receipts

import (
	"encoding/json"
	"time"
)

// Transaction is Apple's JWSTransactionDecodedPayload. Field names follow
// Apple's JSON; dates are decoded from Apple's milliseconds and are zero when
// absent. Fields Apple adds later are kept in Raw.
type Transaction struct {
	TransactionID               string    `json:"transactionId,omitempty"`
	OriginalTransactionID       string    `json:"originalTransactionId,omitempty"`
	WebOrderLineItemID          string    `json:"webOrderLineItemId,omitempty"`
	BundleID                    string    `json:"bundleId,omitempty"`
	ProductID                   string    `json:"productId,omitempty"`
	SubscriptionGroupIdentifier string    `json:"subscriptionGroupIdentifier,omitempty"`
	PurchaseDate                time.Time `json:"-"`
	OriginalPurchaseDate        time.Time `json:"-"`
	ExpiresDate                 time.Time `json:"-"`
	SignedDate                  time.Time `json:"-"`
	RevocationDate              time.Time `json:"-"`
	Quantity                    int64     `json:"quantity,omitempty"`
	Type                        string    `json:"type,omitempty"`
	// AppAccountToken is kept exactly as Apple sent it (Apple has sent
	// both cases); compare UUIDs case-insensitively.
	AppAccountToken      string `json:"appAccountToken,omitempty"`
	InAppOwnershipType   string `json:"inAppOwnershipType,omitempty"`
	RevocationReason     *int   `json:"revocationReason,omitempty"` // nil when absent: 0 is a real reason
	RevocationType       string `json:"revocationType,omitempty"`
	RevocationPercentage int64  `json:"revocationPercentage,omitempty"`
	IsUpgraded           bool   `json:"isUpgraded,omitempty"`
	OfferType            int    `json:"offerType,omitempty"`
	Environment          string `json:"environment,omitempty"`
	Storefront           string `json:"storefront,omitempty"`
	StorefrontID         string `json:"storefrontId,omitempty"`
	TransactionReason    string `json:"transactionReason,omitempty"`
	Currency             string `json:"currency,omitempty"`
	Price                int64  `json:"price,omitempty"` // milliunits of Currency
	AppTransactionID     string `json:"appTransactionId,omitempty"`

	Raw json.RawMessage `json:"-"` // the verified payload JSON, every field Apple sent
	JWS string          `json:"-"` // the JWS it came from, for storage and audit
}

// Revoked reports whether Apple refunded or revoked the transaction.
func (t *Transaction) Revoked() bool {
	return !t.RevocationDate.IsZero() || t.RevocationReason != nil
}

// RevocationPercentageGiven reports whether the payload holds
// revocationPercentage at all: a 0 Apple wrote (a prorated refund too small
// to show in milliunits) is not the same as none.
func (t *Transaction) RevocationPercentageGiven() bool {
	var p struct {
		Percentage *json.RawMessage `json:"revocationPercentage"`
	}
	return json.Unmarshal(t.Raw, &p) == nil && p.Percentage != nil && string(*p.Percentage) != "null"
}

func (t *Transaction) signedAt() time.Time { return t.SignedDate }

// transactionDates are the millisecond fields, kept apart so the struct
// above can expose time.Time.
type transactionDates struct {
	PurchaseDate         millis `json:"purchaseDate,omitempty"`
	OriginalPurchaseDate millis `json:"originalPurchaseDate,omitempty"`
	ExpiresDate          millis `json:"expiresDate,omitempty"`
	SignedDate           millis `json:"signedDate,omitempty"`
	RevocationDate       millis `json:"revocationDate,omitempty"`
}

// UnmarshalJSON reads Apple's JSON (dates in milliseconds), so that Raw, or
// the payload of a stored JWS, decodes again.
func (t *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	var aux struct {
		*plain
		transactionDates
	}
	aux.plain = (*plain)(t)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d := aux.transactionDates
	t.PurchaseDate, t.OriginalPurchaseDate, t.ExpiresDate = d.PurchaseDate.time(), d.OriginalPurchaseDate.time(), d.ExpiresDate.time()
	t.SignedDate, t.RevocationDate = d.SignedDate.time(), d.RevocationDate.time()
	return nil
}

// MarshalJSON writes Apple's JSON (dates in milliseconds), so simulators
// can sign a Transaction with devca and get what Apple would send.
func (t Transaction) MarshalJSON() ([]byte, error) {
	type plain Transaction
	return json.Marshal(struct {
		plain
		transactionDates
	}{plain(t), transactionDates{
		PurchaseDate:         toMillis(t.PurchaseDate),
		OriginalPurchaseDate: toMillis(t.OriginalPurchaseDate),
		ExpiresDate:          toMillis(t.ExpiresDate),
		SignedDate:           toMillis(t.SignedDate),
		RevocationDate:       toMillis(t.RevocationDate),
	}})
}
