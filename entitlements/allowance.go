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
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	return Day{Key: start.Format(time.DateOnly), Start: start, End: time.Date(y, m, d+1, 0, 0, 0, 0, loc)}
}

// Limit is a tier's allowance on day: the base figure, overridden by every
// change that took effect at or before the day's start. A tier the policy
// does not name gets the free tier's figure.
func (p AllowancePolicy) Limit(tier string, day Day) int64 {
	tiers := p.tiersOn(day)
	if limit, ok := tiers[tier]; ok {
		return limit
	}
	return tiers[TierFree]
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
