package sqlite

import (
	"context"
	"fmt"
	"strings"
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
				st, err := db.UserState(ctx, "alice", tokens.Token("alice"), "service:test")
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

// Lots stored with expiries past the last one an answer can write (an
// admin grant could set one before session 25) are answered as expiring at
// that last millisecond, and burn in the order of what is stored: the
// spend's answer and its replay list the same parts, soonest stored expiry
// first.
func TestLotStoredPastYear9999(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	soon := testNow.AddDate(1, 0, 0)
	grant := func(key string, year int) string {
		lot, _, _, err := db.AdminGrant(ctx, entitlements.GrantRequest{UserID: "kim", Token: tokens.Token("kim"),
			Key: key, Hash: key, Credits: 5, ExpiresAt: &soon, Reason: "test", Actor: "admin:test"})
		require.NoError(t, err)
		require.NoError(t, db.update(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE lots SET expires_at = ? WHERE lot_id = ?`,
				time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), lot.LotID)
			return err
		}))
		return lot.LotID
	}
	a := grant("a", 10001) // granted first, expires last
	b := grant("b", 10000)
	answer := func(st entitlements.UserState) string {
		t.Helper()
		b, err := entitlements.Compute(st, entitlements.DefaultAllowance()).AppendJSON(nil)
		require.NoError(t, err, "the entitlement can be written")
		return string(b)
	}
	last := `"expires_at":"9999-12-31T23:59:59.999Z"`
	require.Equal(t, 2, strings.Count(answer(state(t, db, "kim")), last), "read on a reader")
	req := spendReq("kim", "s1", 38) // 30 from the allowance, 8 from the lots
	sp, st, _, err := db.Spend(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(answer(st), last), "read by the writer: b is spent")
	require.Len(t, sp.FromLots, 2)
	require.Equal(t, []entitlements.LotPart{{LotID: b, Credits: 5}, {LotID: a, Credits: 3}}, sp.FromLots, "year 10000 burns first")
	replay, _, replayed, err := db.Spend(ctx, req)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, sp.FromLots, replay.FromLots)
}

// A purchase that waited for its user is granted by the call that first
// names her, and its grant entry names that call's caller: a service that
// spent for her or an admin who granted her credits, not the user, who
// did nothing. It said user:<id> whoever the caller was.
func TestWaitingPurchaseNamesTheCallThatCreatedItsUser(t *testing.T) {
	ctx := context.Background()
	const user = "uma"
	token := tokens.Token(user)
	for name, c := range map[string]struct {
		first func(db *DB) error
		actor string
	}{
		"her own read": {func(db *DB) error {
			_, err := db.UserState(ctx, user, token, entitlements.UserActor(user))
			return err
		}, "user:uma"},
		"a service's read": {func(db *DB) error {
			_, err := db.UserState(ctx, user, token, "service:backend")
			return err
		}, "service:backend"},
		"her claim of another purchase": {func(db *DB) error {
			_, err := claim(t, db, user, purchase("501", token))
			return err
		}, "user:uma"},
		"a spend": {func(db *DB) error {
			_, _, _, err := db.Spend(ctx, spendReq(user, "k", 1)) // service:test
			return err
		}, "service:test"},
		"an admin grant": {func(db *DB) error {
			grantAdmin(t, db, user, "g", 5, nil) // service:ops
			return nil
		}, "service:ops"},
		"a tier change": {func(db *DB) error {
			_, err := db.SetTier(ctx, user, token, entitlements.TierPro, nil, "web", "service:ops")
			return err
		}, "service:ops"},
	} {
		t.Run(name, func(t *testing.T) {
			db := openTest(t)
			webhook(t, db, "n500", purchase("500", token)) // uma unknown: it waits for her
			require.Equal(t, []string{"0"}, queryStrings(t, db, `SELECT count(*) FROM lots`), "it waits")
			require.NoError(t, c.first(db))
			require.Equal(t, c.actor, grantActor(t, db, user, "500"))
		})
	}
}

// grantActor is the actor of the grant entry of transactionID's lot.
func grantActor(t *testing.T, db *DB, user, transactionID string) string {
	t.Helper()
	entries, _, err := db.Ledger(context.Background(), user, tokens.Token(user), "service:auditor", 0, 500)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Kind == "grant" && e.Ref == transactionID {
			return e.Actor
		}
	}
	t.Fatalf("no grant entry for transaction %s in %+v", transactionID, entries)
	return ""
}

// A ledger read names its user as any call does: a user unknown so far is
// created by it, and its first page shows the purchases that waited for
// her, granted in the reader's name. It answered an empty page and created
// no one, so the grant appeared only after another call. Reading a user
// who exists, with entries or without, writes nothing.
func TestLedgerReadCreatesItsUser(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	ledger := func(user string) []entitlements.Entry {
		t.Helper()
		entries, next, err := db.Ledger(ctx, user, tokens.Token(user), "service:ops", 0, 50)
		require.NoError(t, err)
		require.Zero(t, next)
		return entries
	}
	webhook(t, db, "n600", purchase("600", tokens.Token("moe"))) // moe unknown: it waits for her
	entries := ledger("moe")
	require.Len(t, entries, 1, "her first read shows the grant")
	require.Equal(t, "grant", entries[0].Kind)
	require.Equal(t, int64(10), entries[0].Credits)
	require.Equal(t, "600", entries[0].Ref)
	require.Equal(t, "service:ops", entries[0].Actor, "granted by the read that created her")
	require.Empty(t, ledger("ned"))
	require.Equal(t, []string{"moe", "ned"}, queryStrings(t, db, `SELECT user_id FROM users ORDER BY user_id`),
		"a read creates a user with nothing waiting too")

	writes := db.WriterStats().Writes
	require.Len(t, ledger("moe"), 1)
	require.Empty(t, ledger("ned"))
	require.Equal(t, writes, db.WriterStats().Writes, "reading a user who exists writes nothing")
	require.Equal(t, int64(10), balance(t, db, "moe"), "granted once")
}
