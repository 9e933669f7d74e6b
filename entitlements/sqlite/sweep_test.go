package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// grantLot gives user an admin lot of credits that expires at exp (nil:
// never), and says which.
func grantLot(t testing.TB, db *DB, user string, credits int64, exp *time.Time) string {
	t.Helper()
	lot, _, _, err := db.AdminGrant(context.Background(), entitlements.GrantRequest{UserID: user, Token: tokens.Token(user),
		Key: newID("key"), Hash: "h", Credits: credits, ExpiresAt: exp, Reason: "goodwill", Actor: "admin:test"})
	require.NoError(t, err)
	return lot.LotID
}

func at(t time.Time) *time.Time { return &t }

// grantDue grants user a lot that expires at exp, already past: it grants
// at a moment before exp, then puts c back. A new grant must expire in the
// future (GrantRequest.CheckNew); the sweep's tests want lots already due.
func grantDue(t testing.TB, db *DB, c *clock, user string, credits int64, exp time.Time) string {
	t.Helper()
	now := c.now()
	c.set(exp.Add(-time.Hour))
	defer c.set(now)
	return grantLot(t, db, user, credits, &exp)
}

// remaining is a lot's remaining, checked against the sum of its entries.
func remaining(t testing.TB, db *DB, lotID string) int64 {
	t.Helper()
	var rem, sum int64
	require.NoError(t, db.read.QueryRow(`SELECT remaining, (SELECT SUM(credits) FROM entries WHERE lot_id = ?1)
		FROM lots WHERE lot_id = ?1`, lotID).Scan(&rem, &sum))
	require.Equal(t, sum, rem, "a lot's remaining is the sum of its entries")
	return rem
}

func countEntries(t testing.TB, db *DB, kind string) int {
	t.Helper()
	var n int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM entries WHERE kind = ?`, kind).Scan(&n))
	return n
}

func TestExpireLots(t *testing.T) {
	ctx := context.Background()
	t.Run("OK: expired lots with credits left are written off, once", func(t *testing.T) {
		db := openTest(t)
		c := newClock(db, testNow.Add(-48*time.Hour))
		expired := grantLot(t, db, "alice", 10, at(testNow.Add(-time.Hour)))
		_, err := claim(t, db, "alice", purchase("200", tokens.Token("alice"))) // a pack, bought an hour before testNow
		require.NoError(t, err)
		_, _, _, err = db.Spend(ctx, entitlements.SpendRequest{UserID: "alice", Token: tokens.Token("alice"), Key: "s1",
			Hash: "h", Product: "sora", Credits: 34, Actor: "svc"}) // 30 allowance, then 4 from the soonest-expiring lot
		require.NoError(t, err)
		edge := grantLot(t, db, "bob", 5, at(testNow))
		live := grantLot(t, db, "bob", 7, at(testNow.Add(time.Millisecond)))
		forever := grantLot(t, db, "bob", 3, nil)

		c.set(testNow.AddDate(1, 0, 0)) // the pack too has expired by now
		got, err := db.ExpireLots(ctx, testNow, LotKey{}, 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Positive(t, got.Held, "the batch says how long it held the writer")
		got.Held = 0
		require.Equal(t, Expired{Lots: 2, Credits: 6 + 5, End: true}, got, "asOf, not the clock, says what has expired")
		require.Equal(t, int64(0), remaining(t, db, expired))
		require.Equal(t, int64(0), remaining(t, db, edge), "expires_at == now has expired")
		require.Equal(t, int64(7), remaining(t, db, live))
		require.Equal(t, int64(3), remaining(t, db, forever))

		var e entitlements.Entry
		var lotID string
		require.NoError(t, db.read.QueryRow(`SELECT credits, lot_id, reason, actor FROM entries WHERE kind = 'expire'
			AND user_id = 'alice'`).Scan(&e.Credits, &lotID, &e.Reason, &e.Actor))
		require.Equal(t, entitlements.Entry{Credits: -6, Reason: "expired", Actor: "job:expiry-sweep"}, e)
		require.Equal(t, expired, lotID)

		again, err := db.ExpireLots(ctx, testNow, LotKey{}, 500, "job:expiry-sweep")
		require.NoError(t, err)
		require.Equal(t, int64(0), again.Lots, "a second sweep changes nothing")
		require.Equal(t, 2, countEntries(t, db, "expire"))

		require.Equal(t, Expired{Lots: 2, Credits: 10 + 7}, sweepAll(t, db, c.now(), 500), "the pack (12 months) and bob's later lot")
	})
	t.Run("asOf ahead of the clock expires nothing early", func(t *testing.T) {
		db := openTest(t)
		newClock(db, testNow.Add(-time.Hour))
		lot := grantLot(t, db, "alice", 10, at(testNow.Add(time.Hour)))
		require.Equal(t, Expired{}, sweepAll(t, db, testNow.AddDate(1, 0, 0), 500))
		require.Equal(t, int64(10), remaining(t, db, lot))
	})
	t.Run("batches: each walks at most walk lots in key order, from where the last stopped", func(t *testing.T) {
		db := openTest(t)
		newClock(db, testNow.Add(-48*time.Hour))
		for i := range 7 {
			grantLot(t, db, fmt.Sprintf("u%d", i), int64(i+1), at(testNow.Add(-time.Duration(i)*time.Minute)))
		}
		db.Now = func() time.Time { return testNow }
		var batches []Expired
		for after := (LotKey{}); ; {
			got, err := db.ExpireLots(ctx, testNow, after, 3, "job:expiry-sweep")
			require.NoError(t, err)
			batches = append(batches, withoutHeld(got))
			if got.End {
				break
			}
			after = got.Next
		}
		require.Len(t, batches, 3)
		require.Equal(t, []int64{3, 3, 1}, []int64{batches[0].Lots, batches[1].Lots, batches[2].Lots})
		require.Equal(t, "u2", batches[0].Next.UserID, "the last lot the first batch walked")
		require.Equal(t, "u5", batches[1].Next.UserID)
		require.Equal(t, []bool{false, false, true}, []bool{batches[0].End, batches[1].End, batches[2].End})
		require.Equal(t, 7, countEntries(t, db, "expire"))
	})
	t.Run("a batch walks past lots not due, and a user's lots may span two batches", func(t *testing.T) {
		db := openTest(t)
		newClock(db, testNow.Add(-48*time.Hour))
		due1 := grantLot(t, db, "alice", 1, at(testNow.Add(-time.Hour)))
		live := grantLot(t, db, "alice", 2, at(testNow.Add(time.Hour)))
		due2 := grantLot(t, db, "alice", 4, at(testNow.Add(-time.Minute)))
		forever := grantLot(t, db, "alice", 8, nil)
		due3 := grantLot(t, db, "bob", 16, at(testNow.Add(-time.Hour)))
		db.Now = func() time.Time { return testNow }
		// Walking two at a time: alice's lots in two batches, bob's in a third.
		require.Equal(t, Expired{Lots: 3, Credits: 1 + 4 + 16}, sweepAll(t, db, testNow, 2))
		for _, lot := range []string{due1, due2, due3} {
			require.Equal(t, int64(0), remaining(t, db, lot))
		}
		require.Equal(t, int64(2), remaining(t, db, live))
		require.Equal(t, int64(8), remaining(t, db, forever))
		require.Equal(t, Expired{}, sweepAll(t, db, testNow, 2), "a second sweep writes nothing")
	})
}

// sweepAll walks every lot as a sweep does, walk at a time, and adds up
// what the batches wrote off.
func sweepAll(t testing.TB, db *DB, asOf time.Time, walk int) Expired {
	t.Helper()
	var sum Expired
	for after := (LotKey{}); ; {
		got, err := db.ExpireLots(context.Background(), asOf, after, walk, "job:expiry-sweep")
		require.NoError(t, err)
		sum.Lots += got.Lots
		sum.Credits += got.Credits
		if got.End {
			return sum
		}
		after = got.Next
	}
}

// queryPlan is SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.read.Query("EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "\n")
}

// withoutHeld is e without its timing, for comparing what it expired.
func withoutHeld(e Expired) Expired {
	e.Held = 0
	return e
}

// ExpireLotsAhead answers once its batch has run, while the commit it
// shares with the writes queued beside it is still to come: nothing of
// the batch shows until committed says the commit held. If the commit
// fails, committed says that, and the lot keeps its credits.
func TestExpireLotsAheadAnswersBeforeTheCommit(t *testing.T) {
	for name, c := range map[string]struct {
		behind func(*Tx) error // the write sharing the batch's commit
		kept   int64
		err    string
	}{
		"the commit holds": {behind: func(*Tx) error { return nil }},
		"the commit fails": {behind: func(tx *Tx) error {
			_, _ = tx.ExecContext(context.Background(), "ROLLBACK") // as SQLite does on an I/O error
			return errors.New("refused")
		}, kept: 7, err: "refused"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := openTest(t)
			lot := grantDue(t, db, newClock(db, testNow), "alice", 7, testNow.Add(-time.Hour))

			// A write holds the writer while the batch and one more queue
			// behind it, so that those two share the next commit. Both
			// writes are let go at the end whatever happens, so that a
			// failure does not leave the writer parked.
			holding, releaseCh := make(chan struct{}), make(chan struct{})
			running, finishCh := make(chan struct{}), make(chan struct{})
			release, finish := sync.OnceFunc(func() { close(releaseCh) }), sync.OnceFunc(func() { close(finishCh) })
			t.Cleanup(func() { release(); finish() })
			first := make(chan error, 1)
			go func() {
				first <- db.update(ctx, func(*Tx) error { close(holding); <-releaseCh; return nil })
			}()
			within(t, holding, "the first write to begin")
			type answer struct {
				b         Expired
				committed func() error
				err       error
			}
			ahead := make(chan answer, 1)
			go func() {
				b, committed, err := db.ExpireLotsAhead(ctx, testNow, LotKey{}, 10, "job:expiry-sweep")
				ahead <- answer{b, committed, err}
			}()
			require.Eventually(t, func() bool { return len(db.jobs) == 1 }, 5*time.Second, time.Millisecond)
			last := make(chan error, 1)
			go func() {
				last <- db.update(ctx, func(tx *Tx) error { close(running); <-finishCh; return c.behind(tx) })
			}()
			require.Eventually(t, func() bool { return len(db.jobs) == 2 }, 5*time.Second, time.Millisecond)
			release()
			require.NoError(t, within(t, first, "the first write's commit"))

			a := within(t, ahead, "ExpireLotsAhead's answer, which must not wait for the commit")
			within(t, running, "the write behind the batch to begin") // so the commit has not
			require.NoError(t, a.err)
			require.Equal(t, Expired{Lots: 1, Credits: 7, End: true}, withoutHeld(a.b))
			require.Equal(t, int64(7), remaining(t, db, lot), "not committed yet")
			finish()
			if c.err != "" {
				require.ErrorContains(t, a.committed(), c.err)
				require.ErrorContains(t, within(t, last, "the commit"), c.err)
			} else {
				require.NoError(t, a.committed())
				require.NoError(t, within(t, last, "the commit"))
			}
			require.Equal(t, c.kept, remaining(t, db, lot))
		})
	}
}

// within receives from ch, or fails the test after 5 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("waited 5 s for %s", what)
		panic("unreachable")
	}
}

// A batch's walk is found on a read connection, off the one writer: it
// answers while a write holds the writer. The end it finds only bounds the
// batch: a lot granted into the stretch after the end was found is walked
// with it, and one granted past the end waits for the next batch.
func TestSweepFindsItsWalkOffTheWriter(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	c, past := newClock(db, testNow), testNow.Add(-time.Hour)
	bob1, bob2 := grantDue(t, db, c, "bob", 1, past), grantDue(t, db, c, "bob", 2, past)
	carol := grantDue(t, db, c, "carol", 4, past)

	holding, releaseCh := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(releaseCh) })
	t.Cleanup(release)
	held := make(chan error, 1)
	go func() { held <- db.update(ctx, func(*Tx) error { close(holding); <-releaseCh; return nil }) }()
	within(t, holding, "the write that holds the writer")
	type found struct {
		w   batchWalk
		err error
	}
	walk := make(chan found, 1)
	go func() {
		w, err := db.walkFrom(ctx, LotKey{}, 2)
		walk <- found{w, err}
	}()
	f := within(t, walk, "the walk, which must not wait for the writer")
	release()
	require.NoError(t, within(t, held, "the holding write's commit"))
	require.NoError(t, f.err)
	require.Equal(t, batchWalk{end: LotKey{"bob", max(bob1, bob2)}}, f.w, "bob's two lots, the first two in key order")

	alice := grantDue(t, db, c, "alice", 8, past) // sorts before bob: inside the walk
	dave := grantDue(t, db, c, "dave", 16, past)  // after carol: past it
	var b Expired
	require.NoError(t, db.update(ctx, func(tx *Tx) (err error) {
		b, err = tx.expireLots(ctx, testNow, f.w, "job:expiry-sweep")
		return err
	}))
	require.Equal(t, Expired{Lots: 3, Credits: 11, Next: f.w.end}, withoutHeld(b), "alice's lot and bob's two")
	require.Equal(t, int64(0), remaining(t, db, alice))
	require.Equal(t, int64(4), remaining(t, db, carol))
	require.Equal(t, int64(16), remaining(t, db, dave))

	// The last walk: fewer lots are left than it may walk, so it walks to
	// the end, and a lot granted past every lot it saw is walked too.
	rest, err := db.walkFrom(ctx, f.w.end, 10)
	require.NoError(t, err)
	require.Equal(t, batchWalk{after: f.w.end, last: true}, rest)
	zed := grantDue(t, db, c, "zed", 32, past)
	require.NoError(t, db.update(ctx, func(tx *Tx) (err error) {
		b, err = tx.expireLots(ctx, testNow, rest, "job:expiry-sweep")
		return err
	}))
	require.Equal(t, Expired{Lots: 3, Credits: 52, End: true}, withoutHeld(b), "carol's, dave's and zed's")
	require.Equal(t, int64(0), remaining(t, db, zed))

	// And the sweep finds its walks so: the writer has run a batch's
	// statements, never the walk's.
	require.Equal(t, Expired{}, sweepAll(t, db, testNow, 2), "nothing is left to write off")
	var batch, walked bool
	require.NoError(t, db.update(ctx, func(tx *Tx) error {
		_, batch = tx.q.stmts[expireWalkSQL]
		_, walked = tx.q.stmts[walkEndSQL]
		return nil
	}))
	require.True(t, batch, "the writer keeps the statements it has run")
	require.False(t, walked, "the writer never looked for a walk's end")
}
