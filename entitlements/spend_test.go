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
		name                           string
		granted, remaining, spent, pct int64
		policy                         string
		want                           RefundPlan
	}{
		{"full, unspent", 10, 10, 0, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 10}},
		{"full, part spent: debt", 10, 4, 6, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 4, Debt: 6}},
		{"full, part spent: forgiven", 10, 4, 6, 100000, RefundForgive, RefundPlan{Revoked: 10, Removed: 4, WrittenOff: 6}},
		{"prorated takes the unspent part first", 10, 4, 6, 50000, RefundDebt, RefundPlan{Revoked: 5, Removed: 4, Debt: 1}},
		{"prorated rounds down", 10, 10, 0, 33333, RefundDebt, RefundPlan{Revoked: 3, Removed: 3}},
		{"prorated rounds down past Apple's rounding", 10, 10, 0, 55555, RefundDebt, RefundPlan{Revoked: 5, Removed: 5}},
		// 1 of 3 packs (30 credits) is 33.333 %: 9.9999 credits is Apple's
		// rounding of 10, and so is 1 of 9 (11.111 % of 90).
		{"1 of 3 units", 30, 30, 0, 33333, RefundDebt, RefundPlan{Revoked: 10, Removed: 10}},
		{"2 of 3 units", 30, 30, 0, 66667, RefundDebt, RefundPlan{Revoked: 20, Removed: 20}},
		{"1 of 9 units", 90, 90, 0, 11111, RefundDebt, RefundPlan{Revoked: 10, Removed: 10}},
		{"1 of 3 credits", 3, 3, 0, 33333, RefundDebt, RefundPlan{Revoked: 1, Removed: 1}},
		// 1 of 64 is 1.5625 %, exactly half-way between two milliunits:
		// Apple writes 1562, 0.99968 credits, a tie that is still its rounding.
		{"1 of 64 credits, at the tie", 64, 64, 0, 1562, RefundDebt, RefundPlan{Revoked: 1, Removed: 1}},
		{"expired credits are not debt", 10, 0, 4, 100000, RefundDebt, RefundPlan{Revoked: 10, Removed: 0, Debt: 4}},
		{"a bad percentage is a full refund", 10, 10, 0, 0, RefundDebt, RefundPlan{Revoked: 10, Removed: 10}},
		{"no overflow", 1 << 60, 1 << 60, 0, 99999, RefundDebt,
			RefundPlan{Revoked: 1152909975391800908, Removed: 1152909975391800908}}, // 2^60 × 99999 / 100000 = …907.53: the nearest, as Apple's rounding covers over a credit here
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, PlanRefund(tt.granted, tt.remaining, tt.spent, tt.pct, tt.policy))
		})
	}
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
