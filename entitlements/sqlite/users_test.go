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

// A user's state is read in one snapshot (view's BEGIN … COMMIT around the
// row and the lots): a read never sees a spend's allowance without its lot,
// or the other way round, whenever the writer commits. The allowance is
// used first, so every state has either allowance left and its lot whole,
// or the allowance used up. One writer flips the user back and forth
// across that line (a spend of 2 with 1 allowance credit left takes the
// other from the lot; its reversal gives both back) while readers check
// every state they see.
func TestUserStateIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	limit := db.Policy.Allowance.Limit(entitlements.TierFree, db.Policy.Allowance.Day(testNow))
	lot := grantAdmin(t, db, "alice", "g", 100, nil)
	_, _, _, err := db.Spend(ctx, spendReq("alice", "most", limit-1))
	require.NoError(t, err)

	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	stop := func() { done.Store(true); wg.Wait() }
	t.Cleanup(stop) // before the database closes, also when the writer's loop fails
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				st, err := db.UserState(ctx, "alice", tokens.Token("alice"))
				if err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
				fromLot := int64(-1) // the lot missing from the state: never a valid one
				if len(st.Lots) == 1 {
					fromLot = lot.Granted - st.Lots[0].Remaining
				}
				if !(st.AllowanceUsed == limit-1 && fromLot == 0 || st.AllowanceUsed == limit && fromLot == 1) {
					t.Errorf("a state no commit left: allowance used %d of %d, %d taken from the lot",
						st.AllowanceUsed, limit, fromLot)
					return
				}
			}
		})
	}
	for i := 0; i < 300 && !t.Failed(); i++ {
		key := fmt.Sprintf("flip%d", i)
		sp, _, _, err := db.Spend(ctx, spendReq("alice", key, 2))
		require.NoError(t, err)
		_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
	}
	stop()
	t.Logf("%d reads", reads.Load())
	require.Greater(t, reads.Load(), int64(300), "the readers ran beside the writer")
}

// A lot stored with an expiry past the last one an answer can write (an
// admin grant could set one before session 25) is read as expiring at that
// last millisecond: its user's entitlement and spends still answer.
func TestLotStoredPastYear9999IsRead(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	soon := testNow.AddDate(1, 0, 0)
	lot, _, _, err := db.AdminGrant(ctx, entitlements.GrantRequest{UserID: "kim", Token: tokens.Token("kim"),
		Key: "g1", Hash: "h1", Credits: 5, ExpiresAt: &soon, Reason: "test", Actor: "admin:test"})
	require.NoError(t, err)
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	require.NoError(t, db.update(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE lots SET expires_at = ? WHERE lot_id = ?`, far, lot.LotID)
		return err
	}))
	last := "9999-12-31T23:59:59.999Z"
	answer := func(st entitlements.UserState) string {
		t.Helper()
		require.Len(t, st.Lots, 1)
		b, err := entitlements.Compute(st, entitlements.DefaultAllowance()).AppendJSON(nil)
		require.NoError(t, err, "the entitlement can be written")
		return string(b)
	}
	require.Contains(t, answer(state(t, db, "kim")), `"expires_at":"`+last+`"`, "read on a reader")
	_, st, _, err := db.Spend(ctx, spendReq("kim", "s1", 1))
	require.NoError(t, err)
	require.Contains(t, answer(st), `"expires_at":"`+last+`"`, "read by the writer")
}
