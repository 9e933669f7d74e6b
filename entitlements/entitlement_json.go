package entitlements

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as encoding/json would marshal it, byte for byte
// (TestEntitlementAppendJSON holds it to that). Every entitlement read,
// spend and purchase answers with one, and reflection over its nested
// structs and times was a tenth of the server's CPU on the read path. It
// fails as encoding/json does, for a time RFC 3339 cannot say.
func (e Entitlement) AppendJSON(b []byte) ([]byte, error) {
	if !e.plainTimes() {
		out, err := json.Marshal(reflected(e))
		return append(b, out...), err
	}
	b = appendKey(b, `{"user_id":`, e.UserID)
	b = appendKey(b, `,"app_account_token":`, e.AppAccountToken)
	b = appendKey(b, `,"tier":`, e.Tier)
	b = appendInt(b, `,"allowance":{"limit":`, e.Allowance.Limit)
	b = appendInt(b, `,"used":`, e.Allowance.Used)
	b = appendInt(b, `,"remaining":`, e.Allowance.Remaining)
	b = appendTime(append(b, `,"resets_at":`...), e.Allowance.ResetsAt)
	b = appendInt(b, `},"credits":{"balance":`, e.Credits.Balance)
	b = appendInt(b, `,"debt":`, e.Credits.Debt)
	b = append(b, `,"lots":`...)
	if e.Credits.Lots == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, l := range e.Credits.Lots {
			if i > 0 {
				b = append(b, ',')
			}
			b = l.appendJSON(b)
		}
		b = append(b, ']')
	}
	b = appendInt(b, `},"spendable":`, e.Spendable)
	return append(b, '}'), nil
}

// MarshalJSON is AppendJSON, for answers that embed an entitlement.
func (e Entitlement) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }

// plainTimes reports whether every time in e is one appendTime writes as
// encoding/json would.
func (e Entitlement) plainTimes() bool {
	if !jsonTimeOK(e.Allowance.ResetsAt) {
		return false
	}
	for _, l := range e.Credits.Lots {
		if !jsonTimeOK(l.GrantedAt) || (l.ExpiresAt != nil && !jsonTimeOK(writableExpiry(*l.ExpiresAt))) {
			return false
		}
	}
	return true
}

// reflected is an Entitlement without its methods, for encoding/json's own
// path (the times it refuses, and the tests).
type reflected Entitlement

// MarshalJSON writes the lot as the contract lists it: product_id,
// transaction_id and environment are always there, null when the lot has
// none, and the expiry is writableExpiry's. appendJSON is held to it
// (TestEntitlementAppendJSON).
func (l Lot) MarshalJSON() ([]byte, error) {
	lj := lotJSON{LotID: l.LotID, Source: l.Source, ProductID: orNull(l.ProductID),
		TransactionID: orNull(l.TransactionID), Environment: orNull(l.Environment), Granted: l.Granted,
		Remaining: l.Remaining, GrantedAt: l.GrantedAt}
	if l.ExpiresAt != nil {
		t := writableExpiry(*l.ExpiresAt)
		lj.ExpiresAt = &t
	}
	return json.Marshal(lj)
}

// writableExpiry is t, or the last millisecond an answer can write if t is
// later. A lot stored with a later expiry (checkExpiry did not refuse them
// before session 25) is answered as expiring then, the same "never" in
// practice, so that its user's answers do not fail. Only the answer says
// so: the store keeps and orders lots by what it holds.
func writableExpiry(t time.Time) time.Time {
	if t.After(lastExpiry) {
		return lastExpiry.Truncate(time.Millisecond)
	}
	return t
}

// lotJSON is a Lot as JSON writes it.
type lotJSON struct {
	LotID         string     `json:"lot_id"`
	Source        string     `json:"source"`
	ProductID     *string    `json:"product_id"`
	TransactionID *string    `json:"transaction_id"`
	Environment   *string    `json:"environment"`
	Granted       int64      `json:"granted"`
	Remaining     int64      `json:"remaining"`
	GrantedAt     time.Time  `json:"granted_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// appendJSON appends l as MarshalJSON writes it, for times appendTime can
// write.
func (l Lot) appendJSON(b []byte) []byte {
	b = appendKey(b, `{"lot_id":`, l.LotID)
	b = appendKey(b, `,"source":`, l.Source)
	b = appendOptional(b, `,"product_id":`, l.ProductID)
	b = appendOptional(b, `,"transaction_id":`, l.TransactionID)
	b = appendOptional(b, `,"environment":`, l.Environment)
	b = appendInt(b, `,"granted":`, l.Granted)
	b = appendInt(b, `,"remaining":`, l.Remaining)
	b = appendTime(append(b, `,"granted_at":`...), l.GrantedAt)
	b = append(b, `,"expires_at":`...)
	if l.ExpiresAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, writableExpiry(*l.ExpiresAt))
	}
	return append(b, '}')
}

func appendKey(b []byte, key, s string) []byte { return appendString(append(b, key...), s) }

// appendOptional is appendKey with null for "": the key is always written.
func appendOptional(b []byte, key, s string) []byte {
	if s == "" {
		return append(append(b, key...), "null"...)
	}
	return appendKey(b, key, s)
}

func appendInt(b []byte, key string, n int64) []byte {
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendTime is time.Time's MarshalJSON for the years it accepts.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	return append(t.AppendFormat(b, time.RFC3339Nano), '"')
}

// jsonTimeOK reports whether time.Time's MarshalJSON would write t as
// appendTime does: it refuses years outside 0–9999 and zone offsets of a
// whole day or more.
func jsonTimeOK(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, offset := t.Zone()
	return offset > -24*3600 && offset < 24*3600
}

// appendString quotes s as encoding/json does. The strings here are ids,
// tiers and environments, nearly always plain ASCII; anything else takes
// encoding/json's own path, HTML escaping and all.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			out, _ := json.Marshal(s) // a string always marshals
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
