package entitlements

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPlanSpend(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	soon, later := now.Add(time.Hour), now.Add(48*time.Hour)
	past := now.Add(-time.Second)
	lots := []Lot{
		{LotID: "never", Remaining: 100, GrantedAt: now.Add(-9 * time.Hour)},
		{LotID: "later", Remaining: 5, GrantedAt: now.Add(-2 * time.Hour), ExpiresAt: &later},
		{LotID: "soon", Remaining: 3, GrantedAt: now.Add(-1 * time.Hour), ExpiresAt: &soon},
		{LotID: "expired", Remaining: 50, GrantedAt: now.Add(-8 * time.Hour), ExpiresAt: &past},
	}
	tests := []struct {
		name      string
		cost      int64
		allowance int64
		debt      int64
		want      SpendPlan
		code      string
	}{
		{"allowance first", 4, 10, 0, SpendPlan{FromAllowance: 4}, ""},
		{"then lots soonest-expiring first", 12, 2, 0,
			SpendPlan{FromAllowance: 2, FromLots: []LotPart{{"soon", 3}, {"later", 5}, {"never", 2}}}, ""},
		{"exactly everything", 110, 2, 0,
			SpendPlan{FromAllowance: 2, FromLots: []LotPart{{"soon", 3}, {"later", 5}, {"never", 100}}}, ""},
		{"all or nothing", 111, 2, 0, SpendPlan{}, "insufficient_credits"},
		{"expired lots never pay", 109, 0, 0, SpendPlan{}, "insufficient_credits"},
		{"debt refuses every spend", 1, 30, 1, SpendPlan{}, "debt_outstanding"},
		{"a lowered allowance may be overdrawn already", 3, -5, 0, SpendPlan{FromLots: []LotPart{{"soon", 3}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanSpend(tt.cost, tt.allowance, tt.debt, lots, now)
			if tt.code != "" {
				require.Equal(t, tt.code, ErrorCode(err))
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, KindPaymentRequired, e.Kind)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestUserStateAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	soon := now.Add(time.Hour)
	before := UserState{At: now, UserID: "u", Tier: TierPro, AllowanceUsed: 7, Lots: []Lot{
		{LotID: "soon", Granted: 10, Remaining: 3, ExpiresAt: &soon},
		{LotID: "never", Granted: 10, Remaining: 10},
		{LotID: "untouched", Granted: 10, Remaining: 4},
	}}
	plan, err := PlanSpend(8, 2, 0, before.Lots, now)
	require.NoError(t, err)
	after := before.After(plan)

	require.Equal(t, int64(9), after.AllowanceUsed)
	require.Equal(t, []Lot{
		{LotID: "never", Granted: 10, Remaining: 7},
		{LotID: "untouched", Granted: 10, Remaining: 4},
	}, after.Lots, "the emptied lot drops out, the others lose what the plan took")
	require.Equal(t, int64(3), before.Lots[0].Remaining, "the state before is not changed")
	require.Equal(t, TierPro, after.Tier)
	require.Equal(t, now, after.At)
}

func TestPlanRefund(t *testing.T) {
	tests := []struct {
		name                                     string
		granted, quantity, remaining, spent, pct int64
		policy                                   string
		want                                     RefundPlan
	}{
		{"full, unspent", 10, 1, 10, 0, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 10}},
		{"full, part spent: debt", 10, 1, 4, 6, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 4, Debt: 6}},
		{"full, part spent: forgiven", 10, 1, 4, 6, 100000, RefundForgive, RefundPlan{Revoked: 10, Removed: 4, WrittenOff: 6}},
		{"prorated takes the unspent part first", 10, 1, 4, 6, 50000, RefundDebt, RefundPlan{Revoked: 5, Removed: 4, Debt: 1}},
		{"expired credits are not debt", 10, 1, 0, 4, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 0, Debt: 4}},
		{"whole units of a big lot", 150000, 3, 150000, 0, 66667, RefundDebt, RefundPlan{Revoked: 100000, Removed: 100000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, PlanRefund(tt.granted, tt.quantity, tt.remaining, tt.spent, tt.pct, tt.policy))
		})
	}
}

func TestRevoked(t *testing.T) {
	tests := []struct {
		name                   string
		granted, quantity, pct int64
		want                   int64
	}{
		{"prorated rounds down", 10, 1, 33333, 3},
		{"prorated rounds down past Apple's rounding", 10, 1, 55555, 5},
		// 1 of 3 packs (30 credits) is 33.333 %: 9.9999 credits is Apple's
		// rounding of 10, and so is 1 of 9 (11.111 % of 90), whether the
		// units are known or not.
		{"1 of 3 units", 30, 3, 33333, 10},
		{"1 of 3 units, read as one", 30, 1, 33333, 10},
		{"2 of 3 units", 30, 3, 66667, 20},
		{"1 of 9 units", 90, 9, 11111, 10},
		{"1 of 3 credits", 3, 1, 33333, 1},
		// 1 of 64 is 1.5625 %, exactly half-way between two milliunits:
		// Apple writes 1562, 0.99968 credits, a tie that is still its rounding.
		{"1 of 64 credits, at the tie", 64, 1, 1562, 1},
		// Above 100,000 credits half a milliunit spans more than a credit:
		// the units Apple refunded decide, not the share's credits.
		{"2 of 3 units of 50,000 (100,000.5)", 150000, 3, 66667, 100000},
		{"1 of 6 units of 25,000 (25,000.5)", 150000, 6, 16667, 25000},
		{"5 of 9 units of 12,500 (62,500.5)", 112500, 9, 55556, 62500},
		{"2 of 7 units of 16,667 (33,333.49999)", 116669, 7, 28571, 33334},
		{"1 of 3 units of 40,000 (39,999.6)", 120000, 3, 33333, 40000}, // 39,999 is Apple's rounding too
		// 1 of 64 units is 1.5625 %: both 1562 and 1563 are half a
		// milliunit off, and both Apple's rounding of it.
		{"1 of 64 units, at the tie below", 64 * 50000, 64, 1562, 50000},
		{"1 of 64 units, at the tie above", 64 * 50000, 64, 1563, 50000},
		// One unit, or a share that names no units: 49,999.5 credits could
		// be Apple's rounding of 49,999 or 50,000, and the user is never
		// charged for more than Apple refunded.
		{"a big single unit, both neighbours Apple's rounding", 150000, 1, 33333, 49999},
		{"a share of several units that names none", 150000, 3, 50000, 75000},
		{"units that do not divide the lot", 14, 3, 66667, 9}, // 9.33: 2 units of 4 and what is left over would be 8
		{"a bad percentage is a full refund", 10, 1, 0, 10},
		{"a percentage above all is a full refund", 150000, 3, 100001, 150000},
		{"no overflow", 1 << 60, 1, 99999, 1152909975391800907}, // 2^60 × 99999 / 100000 = …907.53, and Apple's rounding covers more than a credit either way
		// Past maxNamedQuantity the units are not read: percent × quantity
		// would overflow here, and name no single count anyway.
		{"a quantity too large to name units", 1 << 62, 1 << 61, 50000, 1 << 61},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Revoked(tt.granted, tt.quantity, tt.pct))
		})
	}
}

// A refund of k of quantity units (2 to 10, as StoreKit sells them) revokes
// exactly k units, at any size of unit, whichever milliunit within half a
// milliunit of k/quantity Apple wrote.
func TestRevokedWholeUnits(t *testing.T) {
	for quantity := int64(2); quantity <= 10; quantity++ {
		for k := int64(1); k < quantity; k++ {
			pcts := appleRoundings(k, quantity)
			for _, per := range []int64{10, 16667, 25000, 50000, 1e9} {
				for _, pct := range pcts {
					require.Equal(t, k*per, Revoked(per*quantity, quantity, pct),
						"%d of %d units of %d credits, at %d milliunits", k, quantity, per, pct)
				}
			}
		}
	}
}

// appleRoundings is every milliunit within half a milliunit of k/quantity:
// what Apple may write as revocationPercentage for k units refunded.
func appleRoundings(k, quantity int64) []int64 {
	var pcts []int64
	for pct := k * 100000 / quantity; pct <= k*100000/quantity+1; pct++ {
		if d := pct*quantity - k*100000; 2*d <= quantity && -2*d <= quantity {
			pcts = append(pcts, pct)
		}
	}
	return pcts
}

func TestPrice(t *testing.T) {
	p := DefaultPricing()
	gen := func(seconds, res string) Generation {
		var g Generation
		require.NoError(t, json.Unmarshal([]byte(`{"seconds":`+seconds+`,"resolution":"`+res+`"}`), &g))
		return g
	}
	for _, c := range []struct {
		product, seconds, res string
		want                  int64
	}{
		{"sora", "10", "1080p", 8},
		{"sora", "10.001", "1080p", 12}, // a started unit counts whole
		{"sora", "5", "480p", 1},
		{"sora", "0.5", "720p", 2},
		{"sora", "60", "480p", 12},
		{"codex", "61", "standard", 2},
		// Any JSON number, as a Python or JS backend sends it, read exactly
		// and rounded up to the millisecond, never down.
		{"sora", "1e1", "1080p", 8},
		{"sora", "0.5E+1", "480p", 1},
		{"codex", "3.6e3", "standard", 60},
		{"sora", "10.000000000000002", "1080p", 12}, // past 10 s: a started unit
		{"sora", "10.0000001", "1080p", 12},
		{"sora", "9.9999999999999999", "1080p", 8}, // not a float's 10 s, but at most 10 s all the same
		{"sora", "5e-324", "480p", 1},              // the least float: a started unit
		{"sora", "1e-400", "480p", 1},              // less than any float: still a started unit
	} {
		got, err := p.Price(c.product, gen(c.seconds, c.res))
		require.NoError(t, err, c)
		require.Equal(t, c.want, got, c)
	}
	for _, c := range []struct{ product, seconds, res, code string }{
		{"sora", "10", "4k", "unknown_resolution"},
		{"video", "10", "1080p", "unknown_product"},
		{"sora", "0", "1080p", "invalid_seconds"},
		{"sora", "-5", "1080p", "invalid_seconds"},
		{"sora", "60.001", "1080p", "invalid_seconds"},
		{"sora", "60.00000000000001", "1080p", "invalid_seconds"},
		{"sora", "-0.0001", "1080p", "invalid_seconds"},
		{"sora", "-0", "1080p", "invalid_seconds"},
		{"sora", "0e5", "1080p", "invalid_seconds"},
		{"sora", "1e400", "1080p", "invalid_seconds"}, // a float's +Inf
		{"sora", "-1e400", "1080p", "invalid_seconds"},
		{"sora", "1e999999999999999999999", "1080p", "invalid_seconds"},
		{"sora", "9223372036854775807", "1080p", "invalid_seconds"},
		{"sora", "9223372036854775808000", "1080p", "invalid_seconds"},
		{"codex", "18446744073709551.617", "standard", "invalid_seconds"}, // 2^64 + 1 ms: wrapped, 1 ms
	} {
		_, err := p.Price(c.product, gen(c.seconds, c.res))
		require.Equal(t, c.code, ErrorCode(err), c)
	}
}
