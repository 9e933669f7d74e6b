package entitlements

import (
	"sort"
	"time"
)

// Lot sources.
const (
	SourceAppStore = "app_store"
	SourceAdmin    = "admin"
	SourceRestored = "restored" // what a reversed refund gives back that its pack can no longer hold
)

// Lot is a time-stamped batch of credits from one purchase or grant. An
// admin lot has no product, transaction or environment, a restored lot no
// transaction: "" here, null in JSON (MarshalJSON; the tags are for readers).
type Lot struct {
	LotID         string     `json:"lot_id"`
	Source        string     `json:"source"`
	ProductID     string     `json:"product_id"`
	TransactionID string     `json:"transaction_id"`
	Environment   string     `json:"environment"`
	Granted       int64      `json:"granted"`
	Remaining     int64      `json:"remaining"`
	GrantedAt     time.Time  `json:"granted_at"`
	ExpiresAt     *time.Time `json:"expires_at"` // nil: never expires
}

// Expired reports whether the lot no longer counts at now. An expired lot
// never counts, whether or not the expiry sweep has written it off.
func (l Lot) Expired(now time.Time) bool {
	return l.ExpiresAt != nil && !now.Before(*l.ExpiresAt)
}

// UserState is what the store knows of a user at one moment.
type UserState struct {
	At              time.Time // the moment the state was read
	UserID          string
	AppAccountToken string
	Tier            string
	AllowanceUsed   int64 // on the day that contains now
	Debt            int64
	Lots            []Lot // any order; expired and empty lots are filtered out
}

// Entitlement is what the app and the generation backend see.
type Entitlement struct {
	UserID          string    `json:"user_id"`
	AppAccountToken string    `json:"app_account_token"`
	Tier            string    `json:"tier"`
	Allowance       Allowance `json:"allowance"`
	Credits         Credits   `json:"credits"`
	Spendable       int64     `json:"spendable"`
}

// Allowance is today's free allowance.
type Allowance struct {
	Limit     int64     `json:"limit"`
	Used      int64     `json:"used"`
	Remaining int64     `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at"`
}

// Credits are the purchased and granted credits.
type Credits struct {
	Balance int64 `json:"balance"`
	Debt    int64 `json:"debt"`
	Lots    []Lot `json:"lots"`
}

// Compute derives the entitlement from the user's state at the moment it
// was read.
func Compute(s UserState, policy AllowancePolicy) Entitlement {
	now := s.At
	day := policy.Day(now)
	tier := s.Tier
	if tier == "" {
		tier = TierFree
	}
	limit := policy.Limit(tier, day)
	remaining := max(limit-s.AllowanceUsed, 0)
	lots := SpendableLots(s.Lots, now)
	var balance int64
	for _, l := range lots {
		balance += l.Remaining
	}
	return Entitlement{
		UserID:          s.UserID,
		AppAccountToken: s.AppAccountToken,
		Tier:            tier,
		Allowance:       Allowance{Limit: limit, Used: s.AllowanceUsed, Remaining: remaining, ResetsAt: day.End.UTC()},
		Credits:         Credits{Balance: balance, Debt: s.Debt, Lots: lots},
		Spendable:       max(remaining+balance-s.Debt, 0),
	}
}

// SpendableLots are the unexpired lots with credits left, in the order they
// are spent: soonest-expiring first, ties oldest first, never-expiring last.
func SpendableLots(lots []Lot, now time.Time) []Lot {
	out := make([]Lot, 0, len(lots))
	for _, l := range lots {
		if l.Remaining > 0 && !l.Expired(now) {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return spendsBefore(out[i], out[j]) })
	return out
}

func spendsBefore(a, b Lot) bool {
	switch {
	case a.ExpiresAt == nil && b.ExpiresAt == nil:
	case a.ExpiresAt == nil:
		return false
	case b.ExpiresAt == nil:
		return true
	case !a.ExpiresAt.Equal(*b.ExpiresAt):
		return a.ExpiresAt.Before(*b.ExpiresAt)
	}
	if !a.GrantedAt.Equal(b.GrantedAt) {
		return a.GrantedAt.Before(b.GrantedAt)
	}
	return a.LotID < b.LotID
}
