package entitlements

import (
	"sort"
	"time"
)

// Tier names. A user is Pro while a subscription configured with tier: pro
// is active (or an admin set it); everyone else is free.
const (
	TierFree = "free"
	TierPro  = "pro"
)

// AllowancePolicy is the free daily allowance: credits per day by tier, with
// the day boundary at midnight in Location, and scheduled changes.
type AllowancePolicy struct {
	Location *time.Location
	Tiers    map[string]int64
	Changes  []AllowanceChange
}

// AllowanceChange replaces some tiers' daily credits from the first day
// boundary on or after Effective. The owner expects to lower allowances.
type AllowanceChange struct {
	Effective time.Time
	Tiers     map[string]int64
}

// DefaultAllowance is 30 a day free and 100 Pro, days in UTC.
func DefaultAllowance() AllowancePolicy {
	return AllowancePolicy{Location: time.UTC, Tiers: map[string]int64{TierFree: 30, TierPro: 100}}
}

// Day is one allowance day: [Start, End) in the policy's time zone.
type Day struct {
	Key        string // YYYY-MM-DD in the policy's zone; the usage counter's key
	Start, End time.Time
}

// Day is the allowance day that contains now.
func (p AllowancePolicy) Day(now time.Time) Day {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := now.In(loc).Date()
	return Day{Key: dateKey(y, m, d), Start: dayStart(y, m, d, loc), End: dayStart(y, m, d+1, loc)}
}

// KeyBefore is the key of the day n days before d, by the calendar: a day
// is not always 24 hours long, nor does it always begin at midnight.
func (d Day) KeyBefore(n int) string {
	y, m, dd := d.Start.Date()
	return dateKey(y, m, dd-n)
}

// dateKey is the date y-m-d (normalised, as time.Date normalises it) as
// YYYY-MM-DD.
func dateKey(y int, m time.Month, d int) string { return date(y, m, d).Format(time.DateOnly) }

// date is y-m-d as an instant that orders dates: noon UTC.
func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

// dayStart is the first instant of the date y-m-d in loc: its midnight, or,
// where the clocks skip midnight (a spring-forward at 00:00, as in
// America/Santiago), the moment they jump to. time.Date normalises a
// midnight that does not exist back into the day before, whose key and end
// it would then give this day. Where the clocks pass midnight twice (a
// fall-back across 00:00, as in Asia/Gaza in 2021), it is the first.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if !date(t.Date()).Before(date(y, m, d)) {
		return firstMidnight(t, loc)
	}
	_, jump := t.ZoneBounds() // t is in the day before, in the offset that ends at the jump
	if jump.IsZero() || !jump.After(t) {
		return t // no jump after t: keep what time.Date gave
	}
	return jump
}

// firstMidnight is the earlier of two midnights, where t is the later one:
// time.Date does not promise which of a repeated local time it gives. The
// zone's offset then changed after an earlier instant of the same date,
// whose midnight, in the offset before, came first.
func firstMidnight(t time.Time, loc *time.Location) time.Time {
	change, _ := t.ZoneBounds()
	if change.IsZero() || !change.After(t.Add(-24*time.Hour)) {
		return t
	}
	before := change.Add(-time.Nanosecond).In(loc)
	if !date(before.Date()).Equal(date(t.Date())) {
		return t
	}
	h, mi, sec := before.Clock()
	return before.Add(-time.Duration(h)*time.Hour - time.Duration(mi)*time.Minute -
		time.Duration(sec)*time.Second - time.Duration(before.Nanosecond()))
}

// Limit is a tier's allowance on day: the base figure, overridden by every
// change that took effect at or before the day's start. A tier the policy
// does not name gets the free tier's figure.
func (p AllowancePolicy) Limit(tier string, day Day) int64 {
	return limitIn(p.tiersOn(day), tier)
}

// limitIn is tier's figure among limits, else the free tier's.
func limitIn(limits map[string]int64, tier string) int64 {
	if limit, ok := limits[tier]; ok {
		return limit
	}
	return limits[TierFree]
}

// Best is the tier of tiers with the highest allowance on day (the first
// in name order among equals): a user holding two tiers at once, say a
// subscription and an admin override, or two subscriptions, gets the better.
func (p AllowancePolicy) Best(tiers []string, day Day) string {
	limits := p.tiersOn(day)
	best := ""
	for _, t := range tiers {
		l, b := limitIn(limits, t), limitIn(limits, best)
		if best == "" || l > b || l == b && t < best {
			best = t
		}
	}
	return best
}

func (p AllowancePolicy) tiersOn(day Day) map[string]int64 {
	changes := append([]AllowanceChange(nil), p.Changes...)
	sort.Slice(changes, func(i, j int) bool { return changes[i].Effective.Before(changes[j].Effective) })
	tiers := make(map[string]int64, len(p.Tiers))
	for k, v := range p.Tiers {
		tiers[k] = v
	}
	for _, c := range changes {
		if c.Effective.After(day.Start) {
			break
		}
		for k, v := range c.Tiers {
			tiers[k] = v
		}
	}
	return tiers
}
