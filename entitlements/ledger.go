package entitlements

import "time"

// SpendRequest is a priced spend, ready for the ledger.
type SpendRequest struct {
	UserID, Token string
	Key, Hash     string // the idempotency key and a hash of the request body
	Product       string
	Credits       int64
	Actor         string
}

// Spend is a recorded spend.
type Spend struct {
	SpendID       string
	Product       string
	Credits       int64
	FromAllowance int64
	AllowanceDay  string
	FromLots      []LotPart
	CreatedAt     time.Time
}

// Reversal gives a failed generation's credits back where they came from.
type Reversal struct {
	ReversalID         string
	SpendID            string
	AllowanceReturned  int64 // given back to the allowance of the spend's day
	AllowanceForfeited int64 // not given back: the spend's day is over
	LotsReturned       []LotPart
	CreatedAt          time.Time
}

// GrantRequest is an admin's goodwill grant.
type GrantRequest struct {
	UserID, Token string
	Key, Hash     string
	Credits       int64
	ExpiresAt     *time.Time // nil: never expires
	Reason, Actor string
}

// CheckNew refuses a grant that would be born expired. Only a new key is
// checked: a replay answers the first grant, even once its expiry has
// passed, so the store checks inside the transaction that finds the key.
func (r GrantRequest) CheckNew(now time.Time) error {
	if r.ExpiresAt != nil && !r.ExpiresAt.After(now) {
		return Errorf(KindInvalid, "invalid_expires_at", "expires_at must be in the future")
	}
	return nil
}

// Entry is one ledger line.
type Entry struct {
	EntryID   string    `json:"entry_id"`
	Kind      string    `json:"kind"`
	Credits   int64     `json:"credits"`
	LotID     *string   `json:"lot_id"`
	Product   string    `json:"product"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	Ref       string    `json:"ref,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}
