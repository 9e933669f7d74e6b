package entitlements

import "time"

// SpendRequest is a priced spend, ready for the ledger.
type SpendRequest struct {
	UserID, Token string
	Key, Hash     string // the idempotency key and a hash of the request body
	Product       string
	Credits       int64
	Actor         string

	// Refused, when set, is why the body would be refused now (a pricing
	// that has changed since its key was kept): the store answers a
	// replay of the key, and otherwise this error, never a charge.
	Refused error
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
	// ReversalID names the spend's reversal once it has one. A replay of
	// the spend's key answers the spend as charged; this tells a backend
	// that retries after reversing that the credits are back.
	ReversalID string
}

// Reversal gives a failed generation's credits back where they came from.
type Reversal struct {
	ReversalID         string
	SpendID            string
	AllowanceReturned  int64     // given back to the allowance of the spend's day
	AllowanceForfeited int64     // not given back: the spend's day is over
	LotsReturned       []LotPart // given back to their lots
	LotsForfeited      []LotPart // not given back: their lots have expired since the spend
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

// CheckNew refuses a grant that would be born expired, or whose reason is
// not audit text. Only a new key is checked: a replay answers the first
// grant, even once its expiry has passed or under a reason an earlier
// version accepted, so the store checks inside the transaction that finds
// the key.
func (r GrantRequest) CheckNew(now time.Time) error {
	if err := checkNewReason(r.Reason); err != nil {
		return err
	}
	if r.ExpiresAt == nil {
		return nil
	}
	return checkExpiry(*r.ExpiresAt, now)
}

// checkNewReason refuses a reason that would forge or reorder audit text
// (Printable).
func checkNewReason(reason string) error {
	if !Printable(reason) {
		return Errorf(KindInvalid, "invalid_reason", "reason must be text that cannot forge or reorder a line: "+
			"no line separator, bidirectional override or isolate, private-use character or noncharacter")
	}
	return nil
}

// lastExpiry is the latest expiry a grant or a tier override may have: the
// last instant RFC 3339 writes in UTC. Answers write times in UTC, and
// encoding/json cannot write a later one, so a lot expiring after it (say
// 9999-12-31T23:00:00-05:00) would make every answer that lists it fail.
// It is the widest bound that keeps answers writable: no expiry that could
// be answered before is refused.
var lastExpiry = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)

// checkExpiry refuses an expiry that has passed at now or that no answer
// could write.
func checkExpiry(t, now time.Time) error {
	if !t.After(now) {
		return Errorf(KindInvalid, "invalid_expires_at", "expires_at must be in the future")
	}
	if t.After(lastExpiry) {
		return Errorf(KindInvalid, "invalid_expires_at", "expires_at must be at most 9999-12-31T23:59:59.999Z (in UTC)")
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
