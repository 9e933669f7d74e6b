package entitlements

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Product is an App Store product this service sells: a consumable credit
// pack (Credits > 0) or an auto-renewable subscription that sets a tier.
type Product struct {
	ID           string
	Credits      int64  // per unit of the transaction's quantity
	ExpiresAfter Expiry // how long a lot of this product lasts
	Tier         string // non-empty for a subscription that grants a tier
}

// Catalog maps App Store product ids to products.
type Catalog map[string]Product

// Expiry is a lot's lifetime: whole calendar months, days, or never.
type Expiry struct {
	Months int
	Days   int
	Never  bool
}

// DefaultExpiry is the owner's choice: purchased credits last 12 months.
var DefaultExpiry = Expiry{Months: 12}

// ParseExpiry reads "12mo", "30d" or "never".
func ParseExpiry(s string) (Expiry, error) {
	switch {
	case s == "never":
		return Expiry{Never: true}, nil
	case strings.HasSuffix(s, "mo"):
		n, err := positive(strings.TrimSuffix(s, "mo"))
		return Expiry{Months: n}, err
	case strings.HasSuffix(s, "d"):
		n, err := positive(strings.TrimSuffix(s, "d"))
		return Expiry{Days: n}, err
	}
	return Expiry{}, fmt.Errorf("%q: want a number of months (12mo), days (30d) or never", s)
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 1200 {
		return 0, fmt.Errorf("%q: want a whole number from 1 to 1200", s)
	}
	return n, nil
}

// String is the form ParseExpiry reads.
func (e Expiry) String() string {
	switch {
	case e.Never:
		return "never"
	case e.Months > 0:
		return fmt.Sprintf("%dmo", e.Months)
	}
	return fmt.Sprintf("%dd", e.Days)
}

// ExpiresAt is when a lot granted at t expires, in UTC, or false for never.
// Months are calendar months that clamp to the month's end, so 29 Feb plus
// 12 months is 28 Feb (time.AddDate would roll over to 1 Mar).
func (e Expiry) ExpiresAt(t time.Time) (time.Time, bool) {
	if e.Never {
		return time.Time{}, false
	}
	t = t.UTC()
	if e.Days > 0 {
		return t.AddDate(0, 0, e.Days), true
	}
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(e.Months), 1, 0, 0, 0, 0, time.UTC)
	if last := daysIn(first); d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
}

func daysIn(firstOfMonth time.Time) int {
	return firstOfMonth.AddDate(0, 1, -1).Day()
}

// MaxCredits bounds one spend, grant or lot. Real figures are tens of
// credits; the bound keeps every sum the ledger makes far from int64's
// limits.
const MaxCredits int64 = 1_000_000_000

// LotCredits is product credits × quantity, refusing a quantity below 1 and
// a lot above MaxCredits.
func LotCredits(p Product, quantity int64) (int64, error) {
	if quantity < 1 {
		return 0, fmt.Errorf("quantity %d: want at least 1", quantity)
	}
	if p.Credits > MaxCredits/quantity {
		return 0, fmt.Errorf("%d credits × quantity %d is above %d", p.Credits, quantity, MaxCredits)
	}
	return p.Credits * quantity, nil
}
