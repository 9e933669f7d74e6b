package sqlite

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

func spendReq(user, key string, credits int64) entitlements.SpendRequest {
	return entitlements.SpendRequest{UserID: user, Token: tokens.Token(user), Key: key,
		Hash: fmt.Sprintf("h-%d", credits), Product: "sora", Credits: credits, Actor: "service:test"}
}

func grantAdmin(t testing.TB, db *DB, user, key string, credits int64, exp *time.Time) entitlements.Lot {
	t.Helper()
	lot, _, _, err := db.AdminGrant(context.Background(), entitlements.GrantRequest{UserID: user, Token: tokens.Token(user),
		Key: key, Hash: key, Credits: credits, ExpiresAt: exp, Reason: "test", Actor: "service:ops"})
	require.NoError(t, err)
	return lot
}

func TestSpendAllowanceThenLots(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	later, soon := testNow.AddDate(0, 6, 0), testNow.AddDate(0, 1, 0)
	a := grantAdmin(t, db, "alice", "g1", 10, &later)
	b := grantAdmin(t, db, "alice", "g2", 10, &soon)
	c := grantAdmin(t, db, "alice", "g3", 10, nil)

	sp, st, replayed, err := db.Spend(ctx, spendReq("alice", "k1", 45))
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, int64(30), sp.FromAllowance, "today's allowance first")
	require.Equal(t, []entitlements.LotPart{{LotID: b.LotID, Credits: 10}, {LotID: a.LotID, Credits: 5}}, sp.FromLots)
	e := entitlements.Compute(st, db.Policy.Allowance)
	require.Equal(t, int64(0), e.Allowance.Remaining)
	require.Equal(t, int64(15), e.Credits.Balance)
	require.Equal(t, []string{a.LotID, c.LotID}, []string{e.Credits.Lots[0].LotID, e.Credits.Lots[1].LotID})

	again, _, replayed, err := db.Spend(ctx, spendReq("alice", "k1", 45))
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, sp, again, "a replay answers the first spend")
	require.Equal(t, int64(15), balance(t, db, "alice"), "and changes nothing")

	_, _, _, err = db.Spend(ctx, spendReq("alice", "k1", 44))
	require.Equal(t, "idempotency_key_reused", entitlements.ErrorCode(err))

	_, _, _, err = db.Spend(ctx, spendReq("alice", "k2", 16))
	require.Equal(t, "insufficient_credits", entitlements.ErrorCode(err))
	require.Equal(t, int64(15), balance(t, db, "alice"), "a refused spend changes nothing")
	_, _, replayed, err = db.Spend(ctx, spendReq("alice", "k2", 15))
	require.NoError(t, err, "a refused key is not kept: it may succeed later")
	require.False(t, replayed)

	_, _, _, err = db.Spend(ctx, spendReq("bob", "k1", 1))
	require.NoError(t, err, "keys are per user")
}

func TestAllowanceIsDerivedPerDay(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, _, _, err := db.Spend(ctx, spendReq("alice", "d1", 30))
	require.NoError(t, err)
	_, _, _, err = db.Spend(ctx, spendReq("alice", "d2", 1))
	require.Equal(t, "insufficient_credits", entitlements.ErrorCode(err))
	db.Now = func() time.Time { return testNow.Add(12 * time.Hour) } // past midnight UTC; no job ran
	_, _, _, err = db.Spend(ctx, spendReq("alice", "d2", 30))
	require.NoError(t, err, "a new day brings a new allowance with no job")
}

// 64 simultaneous spends of 1 credit against 40 spendable credits: exactly
// 40 succeed and nothing ever goes negative.
func TestConcurrentSpendsNeverOverdraw(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	db.Policy.Allowance.Tiers = map[string]int64{entitlements.TierFree: 25, entitlements.TierPro: 100}
	grantAdmin(t, db, "alice", "g", 15, nil)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, err := db.Spend(ctx, spendReq("alice", fmt.Sprintf("c%d", i), 1))
			switch {
			case err == nil:
				ok.Add(1)
			case entitlements.ErrorCode(err) == "insufficient_credits":
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(40), ok.Load())
	require.Equal(t, int64(24), refused.Load())
	e := entitlements.Compute(state(t, db, "alice"), db.Policy.Allowance)
	require.Equal(t, int64(0), e.Spendable)
	require.Equal(t, int64(25), e.Allowance.Used)
	var negative int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM lots WHERE remaining < 0`).Scan(&negative))
	require.Zero(t, negative)
}

func TestReverse(t *testing.T) {
	ctx := context.Background()
	t.Run("OK returns credits where they came from, once", func(t *testing.T) {
		db := openTest(t)
		exp := testNow.AddDate(0, 1, 0)
		lot := grantAdmin(t, db, "alice", "g", 10, &exp)
		sp, _, _, err := db.Spend(ctx, spendReq("alice", "s", 34))
		require.NoError(t, err)
		rv, st, created, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, int64(30), rv.AllowanceReturned)
		require.Equal(t, []entitlements.LotPart{{LotID: lot.LotID, Credits: 4}}, rv.LotsReturned)
		e := entitlements.Compute(st, db.Policy.Allowance)
		require.Equal(t, int64(30), e.Allowance.Remaining)
		require.Equal(t, int64(10), e.Credits.Balance)
		require.Equal(t, exp, *e.Credits.Lots[0].ExpiresAt, "with its original expiry")

		again, _, created, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, rv, again)
		require.Equal(t, int64(10), balance(t, db, "alice"), "a repeat changes nothing")

		replay, _, replayed, err := db.Spend(ctx, spendReq("alice", "s", 34))
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, rv.ReversalID, replay.ReversalID, "the spend's replay names its reversal")
		require.Equal(t, sp.FromLots, replay.FromLots, "and answers the spend as charged")
		require.Equal(t, int64(10), balance(t, db, "alice"), "charging nothing")
	})
	t.Run("allowance parts only on the same day", func(t *testing.T) {
		db := openTest(t)
		grantAdmin(t, db, "alice", "g", 10, nil)
		sp, _, _, err := db.Spend(ctx, spendReq("alice", "s", 32))
		require.NoError(t, err)
		db.Now = func() time.Time { return testNow.Add(13 * time.Hour) }
		rv, st, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.Equal(t, int64(0), rv.AllowanceReturned)
		require.Equal(t, int64(30), rv.AllowanceForfeited)
		e := entitlements.Compute(st, db.Policy.Allowance)
		require.Equal(t, int64(30), e.Allowance.Remaining, "today's allowance is untouched")
		require.Equal(t, int64(10), e.Credits.Balance)
	})
	t.Run("lot parts only to lots that have not expired since", func(t *testing.T) {
		db := openTest(t)
		c := newClock(db, testNow)
		soon, later := testNow.Add(time.Hour), testNow.Add(48*time.Hour)
		ending := grantAdmin(t, db, "alice", "g1", 5, &soon)
		lasting := grantAdmin(t, db, "alice", "g2", 10, &later)
		sp, _, _, err := db.Spend(ctx, spendReq("alice", "s", 38)) // 30 allowance, 5 + 3 from lots
		require.NoError(t, err)
		require.Equal(t, []entitlements.LotPart{{LotID: ending.LotID, Credits: 5}, {LotID: lasting.LotID, Credits: 3}}, sp.FromLots)

		c.set(soon) // the generation fails as the first lot expires: Lot.Expired's instant
		rv, st, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.Equal(t, []entitlements.LotPart{{LotID: lasting.LotID, Credits: 3}}, rv.LotsReturned)
		require.Equal(t, []entitlements.LotPart{{LotID: ending.LotID, Credits: 5}}, rv.LotsForfeited,
			"an expired lot takes nothing back, and the answer says so")
		e := entitlements.Compute(st, db.Policy.Allowance)
		require.Equal(t, int64(10), e.Credits.Balance)
		require.Equal(t, []string{"reverse 5 " + forfeitReason, "expire -5 expired"}, queryStrings(t, db,
			`SELECT kind || ' ' || credits || ' ' || reason FROM entries WHERE lot_id = ? AND ref = ? AND kind != 'spend'
			ORDER BY entry_id`, ending.LotID, sp.SpendID), "given back and written off at once")
		require.Equal(t, []string{"0"}, queryStrings(t, db,
			`SELECT CAST(remaining AS TEXT) FROM lots WHERE lot_id = ?`, ending.LotID), "the lot's remaining unchanged")

		c.add(time.Hour)
		again, _, created, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, rv, again, "a replay answers the split made at the reversal")
		require.Contains(t, queryPlan(t, db, reversedToLotSQL, ending.LotID, sp.SpendID), "entries_lot_spent",
			"read from the lot's entries")

		edge := testNow.Add(3 * time.Hour)
		lastMinute := grantAdmin(t, db, "alice", "g3", 5, &edge)
		sp2, _, _, err := db.Spend(ctx, spendReq("alice", "s2", 32)) // 30 allowance, 2 from the lot expiring first
		require.NoError(t, err)
		require.Equal(t, []entitlements.LotPart{{LotID: lastMinute.LotID, Credits: 2}}, sp2.FromLots)
		c.set(edge.Add(-time.Millisecond))
		rv2, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp2.SpendID, "service:test")
		require.NoError(t, err)
		require.Equal(t, sp2.FromLots, rv2.LotsReturned, "a millisecond before its expiry the lot takes its part back")
		require.Empty(t, rv2.LotsForfeited)
		check, err := db.CheckLedger(ctx, "")
		require.NoError(t, err)
		require.Zero(t, check.Found, "every figure rebuilds from the entries: %v", check.Mismatches)
	})
	t.Run("ErrNotFound for another user's spend", func(t *testing.T) {
		db := openTest(t)
		sp, _, _, err := db.Spend(ctx, spendReq("alice", "s", 1))
		require.NoError(t, err)
		_, _, _, err = db.Reverse(ctx, "bob", tokens.Token("bob"), sp.SpendID, "service:test")
		require.Equal(t, "spend_not_found", entitlements.ErrorCode(err))
	})
}

func TestAdminGrantIdempotent(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	req := entitlements.GrantRequest{UserID: "alice", Token: tokens.Token("alice"), Key: "g", Hash: "h1", Credits: 5,
		Reason: "sorry", Actor: "service:ops"}
	lot, _, replayed, err := db.AdminGrant(ctx, req)
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, entitlements.SourceAdmin, lot.Source)
	again, _, replayed, err := db.AdminGrant(ctx, req)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, lot, again)
	req.Hash = "h2"
	_, _, _, err = db.AdminGrant(ctx, req)
	require.Equal(t, "idempotency_key_reused", entitlements.ErrorCode(err))
	require.Equal(t, int64(5), balance(t, db, "alice"))
}

// A replay answers the first grant even once its expiry has passed; only a
// new key must expire in the future, and refusing it creates nothing.
func TestAdminGrantReplayOutlivesItsExpiry(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	c := newClock(db, testNow)
	exp := testNow.Add(time.Hour)
	req := entitlements.GrantRequest{UserID: "alice", Token: tokens.Token("alice"), Key: "g", Hash: "h", Credits: 5,
		ExpiresAt: &exp, Reason: "sorry", Actor: "service:ops"}
	lot, _, _, err := db.AdminGrant(ctx, req)
	require.NoError(t, err)

	c.add(2 * time.Hour)
	again, _, replayed, err := db.AdminGrant(ctx, req)
	require.NoError(t, err, "the same body, after its lot expired")
	require.True(t, replayed)
	require.Equal(t, lot.LotID, again.LotID)

	req.Key, req.UserID, req.Token = "g2", "bob", tokens.Token("bob")
	_, _, _, err = db.AdminGrant(ctx, req)
	require.Equal(t, "invalid_expires_at", entitlements.ErrorCode(err), "a new grant born expired")
	require.Equal(t, []string{"alice"}, queryStrings(t, db, `SELECT user_id FROM users`), "and no user for it")
}

func TestLedgerPagesNewestFirst(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	for i := range 5 {
		grantAdmin(t, db, "alice", fmt.Sprintf("g%d", i), int64(i+1), nil)
	}
	grantAdmin(t, db, "bob", "g", 9, nil)
	var seen []int64
	var before int64
	for {
		page, next, err := db.Ledger(ctx, "alice", tokens.Token("alice"), "service:ops", before, 2)
		require.NoError(t, err)
		for _, e := range page {
			require.Equal(t, "admin_grant", e.Kind)
			require.Equal(t, "service:ops", e.Actor)
			seen = append(seen, e.Credits)
		}
		if next == 0 {
			break
		}
		before = next
	}
	require.Equal(t, []int64{5, 4, 3, 2, 1}, seen)
}

// A spend is often the first call that names a user: the purchase that
// waited for their token is theirs before the spend is planned.
func TestSpendForNewUserWithPendingPurchase(t *testing.T) {
	db := openTest(t)
	webhook(t, db, "n-gina", purchase("400", tokens.Token("gina")))
	sp, st, replayed, err := db.Spend(context.Background(), spendReq("gina", "k1", 35))
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, int64(30), sp.FromAllowance)
	require.Len(t, sp.FromLots, 1, "the waiting pack pays the rest")
	require.Equal(t, int64(5), sp.FromLots[0].Credits)
	require.Equal(t, int64(5), entitlements.Compute(st, db.Policy.Allowance).Credits.Balance)
	require.Equal(t, int64(5), balance(t, db, "gina"))
}

// Where the clocks skip midnight (America/Santiago, 6 Sep 2026), the day
// after a day's allowance was used has one of its own, and reversing the
// earlier day's spend forfeits its allowance rather than returning it to a
// day that had ended.
func TestAllowanceOverASkippedMidnight(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	santiago, err := time.LoadLocation("America/Santiago")
	require.NoError(t, err)
	db.Policy.Allowance = entitlements.AllowancePolicy{Location: santiago, Tiers: map[string]int64{"free": 30, "pro": 100}}
	c := newClock(db, time.Date(2026, 9, 5, 12, 0, 0, 0, santiago))
	sat, _, _, err := db.Spend(ctx, spendReq("alice", "sat", 30))
	require.NoError(t, err)
	c.set(time.Date(2026, 9, 6, 12, 0, 0, 0, santiago))
	allowance := entitlements.Compute(state(t, db, "alice"), db.Policy.Allowance).Allowance
	require.Equal(t, int64(0), allowance.Used, "6 Sep's allowance is its own")
	require.Equal(t, int64(30), allowance.Remaining)
	rv, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sat.SpendID, "svc")
	require.NoError(t, err)
	require.Equal(t, int64(30), rv.AllowanceForfeited)
	require.Zero(t, rv.AllowanceReturned)
}

// A request the pricing refuses now (Refused) only replays the spend kept
// under its key; with none kept it is refused, and charges nothing, even
// at credits it could pay. SpendKept finds the kept spend's hash.
func TestSpendRefusedOnlyReplays(t *testing.T) {
	db := openWithAlice(t)
	ctx := context.Background()
	grantAdmin(t, db, "alice", "g", 100, nil)
	first, _, _, err := db.Spend(ctx, spendReq("alice", "k1", 5))
	require.NoError(t, err)

	hash, found, err := db.SpendKept(ctx, "alice", "k1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "h-5", hash)
	_, found, err = db.SpendKept(ctx, "alice", "k2")
	require.NoError(t, err)
	require.False(t, found)

	refusal := entitlements.Errorf(entitlements.KindInvalid, "unknown_resolution", "gone")
	req := spendReq("alice", "k1", 5)
	req.Credits, req.Refused = 0, refusal
	again, _, replayed, err := db.Spend(ctx, req)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, first.SpendID, again.SpendID)

	req = spendReq("alice", "k2", 5)
	req.Refused = refusal
	_, _, _, err = db.Spend(ctx, req)
	require.Equal(t, "unknown_resolution", entitlements.ErrorCode(err))
	_, found, err = db.SpendKept(ctx, "alice", "k2")
	require.NoError(t, err)
	require.False(t, found, "nothing was charged or kept")
	st := state(t, db, "alice")
	require.Equal(t, int64(5), st.AllowanceUsed, "the first spend only")
	require.Equal(t, int64(100), balance(t, db, "alice"))
}

// A reversal's replay reads each lot part's split from the ledger; a part
// with no entry there (as a build of session 33 wrote for a part it
// forfeited) is answered forfeited, and never makes the replay look for a
// reversal that is not there, reverse again and fail on its key.
func TestReverseReplayOfAPartWithNoEntry(t *testing.T) {
	ctx := context.Background()
	db := openWithAlice(t)
	c := newClock(db, testNow)
	_, sp, expiry := spendBeforeExpiry(t, db, c, "960", 4)
	c.set(expiry.Add(time.Minute))
	rv, _, _, err := db.Reverse(ctx, "alice", "", sp.SpendID, "service:test")
	require.NoError(t, err)
	for _, q := range []string{`DROP TRIGGER entries_no_delete`,
		`DELETE FROM entries WHERE lot_id IS NOT NULL AND ref = '` + sp.SpendID + `' AND kind IN ('reverse', 'expire')`} {
		_, err = writeExec(db, q)
		require.NoError(t, err)
	}
	again, _, created, err := db.Reverse(ctx, "alice", "", sp.SpendID, "service:test")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, rv, again)
}
