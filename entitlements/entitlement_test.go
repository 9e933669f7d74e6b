package entitlements

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestComputeEntitlement(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	soon, later, past := now.Add(24*time.Hour), now.Add(48*time.Hour), now.Add(-time.Second)
	st := UserState{
		At: now, UserID: "alice", AppAccountToken: "tok", AllowanceUsed: 4,
		Lots: []Lot{
			{LotID: "never", Granted: 5, Remaining: 5, GrantedAt: now.Add(-5 * time.Hour)},
			{LotID: "later", Granted: 10, Remaining: 7, GrantedAt: now.Add(-3 * time.Hour), ExpiresAt: &later},
			{LotID: "soon", Granted: 10, Remaining: 10, GrantedAt: now.Add(-2 * time.Hour), ExpiresAt: &soon},
			{LotID: "expired", Granted: 10, Remaining: 10, GrantedAt: now.Add(-9 * time.Hour), ExpiresAt: &past},
			{LotID: "empty", Granted: 10, Remaining: 0, GrantedAt: now.Add(-9 * time.Hour), ExpiresAt: &soon},
		},
	}
	e := Compute(st, DefaultAllowance())
	require.Equal(t, TierFree, e.Tier)
	require.Equal(t, Allowance{Limit: 30, Used: 4, Remaining: 26, ResetsAt: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}, e.Allowance)
	require.Equal(t, int64(22), e.Credits.Balance, "expired and empty lots never count")
	require.Equal(t, []string{"soon", "later", "never"}, lotIDs(e.Credits.Lots), "soonest-expiring first, never last")
	require.Equal(t, int64(26+22), e.Spendable)

	st.Debt = 100
	require.Equal(t, int64(0), Compute(st, DefaultAllowance()).Spendable, "spendable never below zero")
	st.Debt, st.AllowanceUsed = 3, 40
	e = Compute(st, DefaultAllowance())
	require.Equal(t, int64(0), e.Allowance.Remaining, "remaining never below zero when the limit was lowered")
	require.Equal(t, int64(22-3), e.Spendable)
}

func TestSpendableLotsTieBreaks(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := now.AddDate(1, 0, 0)
	lots := []Lot{
		{LotID: "b", Remaining: 1, GrantedAt: now, ExpiresAt: &exp},
		{LotID: "young", Remaining: 1, GrantedAt: now.Add(time.Hour), ExpiresAt: &exp},
		{LotID: "a", Remaining: 1, GrantedAt: now, ExpiresAt: &exp},
		{LotID: "old", Remaining: 1, GrantedAt: now.Add(-time.Hour), ExpiresAt: &exp},
	}
	require.Equal(t, []string{"old", "a", "b", "young"}, lotIDs(SpendableLots(lots, now)))
}

func TestLotExpiredAtItsInstant(t *testing.T) {
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Lot{ExpiresAt: &exp}
	require.False(t, l.Expired(exp.Add(-time.Millisecond)))
	require.True(t, l.Expired(exp), "a lot is gone at its expiry instant")
}

func lotIDs(lots []Lot) []string {
	ids := make([]string, len(lots))
	for i, l := range lots {
		ids[i] = l.LotID
	}
	return ids
}
