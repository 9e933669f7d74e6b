package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
)

var tokens = func() entitlements.TokenDeriver {
	d, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	if err != nil {
		panic(err)
	}
	return d
}()

func grant(t testing.TB, db *sqlite.DB, user string, credits int64, expires time.Time) {
	t.Helper()
	// Granted an hour before it expires: a new grant must expire in the
	// future, and these tests want lots already due.
	now := db.Now
	db.Now = func() time.Time { return expires.Add(-time.Hour) }
	defer func() { db.Now = now }()
	_, _, _, err := db.AdminGrant(context.Background(), entitlements.GrantRequest{UserID: user, Token: tokens.Token(user),
		Key: fmt.Sprintf("k%d-%d", credits, expires.UnixNano()), Hash: "h", Credits: credits, ExpiresAt: &expires,
		Reason: "goodwill", Actor: "admin:test"})
	require.NoError(t, err)
}

// cancelAfter cancels the sweep's context after its first batch.
type cancelAfter struct {
	*sqlite.DB
	cancel context.CancelFunc
}

func (c cancelAfter) ExpireLotsAhead(ctx context.Context, asOf time.Time, after sqlite.LotKey, walk int, actor string) (
	sqlite.Expired, func() error, error) {
	defer c.cancel()
	return c.DB.ExpireLotsAhead(ctx, asOf, after, walk, actor)
}

// batchExpirer is a fake store's ExpireLots.
type batchExpirer interface {
	ExpireLots(ctx context.Context, asOf time.Time, after sqlite.LotKey, walk int, actor string) (sqlite.Expired, error)
}

// atOnce gives a fake whose batches commit as they run the Expirer's shape.
type atOnce struct{ batchExpirer }

func (a atOnce) ExpireLotsAhead(ctx context.Context, asOf time.Time, after sqlite.LotKey, walk int, actor string) (
	sqlite.Expired, func() error, error) {
	b, err := a.ExpireLots(ctx, asOf, after, walk, actor)
	return b, func() error { return nil }, err
}

func TestExpirySweep(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, tempDB(t))
	past := time.Now().Add(-time.Hour)
	for i := range 5 {
		grant(t, db, "alice", int64(i+1), past.Add(time.Duration(i)*time.Second))
	}
	grant(t, db, "alice", 100, time.Now().Add(time.Hour))

	t.Run("OK: batch by batch, once", func(t *testing.T) {
		sweep := ExpirySweep(db, 2, false)
		res, err := sweep(ctx, time.Now())
		require.NoError(t, err)
		require.Equal(t, Result{"lots": 5, "credits": 15, "batches": 4}, res, "six lots walked two at a time, then the end")
		res, err = sweep(ctx, time.Now())
		require.NoError(t, err)
		require.Equal(t, Result{"lots": 0, "credits": 0, "batches": 4}, res, "running it twice changes nothing")
		st, err := db.UserState(ctx, "alice", tokens.Token("alice"), "service:test")
		require.NoError(t, err)
		require.Len(t, st.Lots, 1)
		require.Equal(t, int64(100), st.Lots[0].Remaining)
	})
	t.Run("stops between batches once its context ends", func(t *testing.T) {
		db := openDB(t, tempDB(t))
		for i := range 5 {
			grant(t, db, "bob", 1, past.Add(time.Duration(i)*time.Second))
		}
		for _, yield := range []bool{false, true} {
			cctx, cancel := context.WithCancel(ctx)
			res, err := ExpirySweep(cancelAfter{db, cancel}, 2, yield)(cctx, time.Now())
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, Result{"lots": 2, "credits": 2, "batches": 1}, res, "the batch in progress completes")
			db = openDB(t, tempDB(t))
			for i := range 5 {
				grant(t, db, "bob", 1, past.Add(time.Duration(i)*time.Second))
			}
		}
	})
}

// slowExpirer takes d per batch and has n full batches to give before the
// one that walks to the end.
type slowExpirer struct {
	d       time.Duration
	n, done int
}

func (s *slowExpirer) ExpireLots(context.Context, time.Time, sqlite.LotKey, int, string) (sqlite.Expired, error) {
	time.Sleep(s.d)
	if s.done == s.n {
		return sqlite.Expired{End: true}, nil
	}
	s.done++
	return sqlite.Expired{Lots: 2, Credits: 20, Next: sqlite.LotKey{UserID: "u", LotID: fmt.Sprint(s.done)}}, nil
}

// In its own process the sweep leaves SQLite's write lock free between
// batches for as long as each batch held it, so a live server's writer
// gets its turns; in the server it does not pause.
func TestExpirySweepYields(t *testing.T) {
	for _, yield := range []bool{false, true} {
		start := time.Now()
		_, err := ExpirySweep(atOnce{&slowExpirer{d: 20 * time.Millisecond, n: 3}}, 2, yield)(context.Background(), time.Now())
		require.NoError(t, err)
		took := time.Since(start)
		if yield {
			require.GreaterOrEqual(t, took, 160*time.Millisecond, "4 batches of 20 ms, each followed by as long a pause")
		} else {
			require.Less(t, took, 150*time.Millisecond)
		}
	}
}

func TestNextSweepBatch(t *testing.T) {
	for _, c := range []struct {
		name       string
		size       int
		held       time.Duration
		most, want int
	}{
		{"over budget: shrinks in proportion", 1000, 20 * time.Millisecond, 1000, 250},
		{"under budget: grows, at most doubling", 100, time.Millisecond, 1000, 200},
		{"never past the configured batch", 800, 2 * time.Millisecond, 1000, 1000},
		{"never below the floor", 100, time.Second, 1000, minSweepBatch},
		{"a configured batch below the floor wins", 10, time.Second, 10, 10},
		{"nothing measured: unchanged", 300, 0, 1000, 300},
	} {
		require.Equal(t, c.want, nextSweepBatch(c.size, c.held, c.most), c.name)
	}
}

// perLotExpirer takes perLot of writer time for each lot it walks, all of
// them due, like a database whose expiring lots are spread over many
// pages, and has left lots; it walks to the end when fewer than walk are
// left. It checks that each batch walks on from where the last stopped.
type perLotExpirer struct {
	perLot time.Duration
	left   int
	limits []int
	walked int
}

func (e *perLotExpirer) ExpireLots(_ context.Context, _ time.Time, after sqlite.LotKey, walk int, _ string) (sqlite.Expired, error) {
	if want := (sqlite.LotKey{LotID: fmt.Sprint(e.walked)}); e.walked > 0 && after != want {
		return sqlite.Expired{}, fmt.Errorf("batch walks from %v, want %v", after, want)
	}
	e.limits = append(e.limits, walk)
	n := min(walk, e.left)
	e.left -= n
	e.walked += n
	return sqlite.Expired{Lots: int64(n), Credits: int64(n), Held: time.Duration(n) * e.perLot,
		Next: sqlite.LotKey{LotID: fmt.Sprint(e.walked)}, End: n < walk}, nil
}

// Batches follow SweepBudget: where a lot takes 40 µs, the sweep settles on
// batches of 125 (5 ms), so a spend waits about that long, and the commit.
func TestExpirySweepBatchesFollowTheBudget(t *testing.T) {
	e := &perLotExpirer{perLot: 40 * time.Microsecond, left: 2*SweepBatch + 500}
	res, err := ExpirySweep(atOnce{e}, SweepBatch, false)(context.Background(), time.Now())
	require.NoError(t, err)
	require.Equal(t, int64(2*SweepBatch+500), res["lots"], "every lot is expired")
	require.Equal(t, SweepBatch, e.limits[0], "the first batch is the configured size")
	for _, l := range e.limits[1 : len(e.limits)-1] {
		require.Equal(t, 125, l, "then batches of the budget's size")
	}
}

func TestExpirySweepOfZeroStillFinishes(t *testing.T) {
	e := &perLotExpirer{perLot: time.Microsecond, left: 3}
	res, err := ExpirySweep(atOnce{e}, 0, false)(context.Background(), time.Now())
	require.NoError(t, err)
	require.Equal(t, int64(3), res["lots"], "a configured batch of 0 is read as 1")
}

// stuckExpirer's batches never walk past where they began.
type stuckExpirer struct{ calls int }

func (s *stuckExpirer) ExpireLots(_ context.Context, _ time.Time, after sqlite.LotKey, _ int, _ string) (sqlite.Expired, error) {
	s.calls++
	return sqlite.Expired{Next: after}, nil
}

func TestExpirySweepStopsAWalkThatDoesNotMove(t *testing.T) {
	e := &stuckExpirer{}
	_, err := ExpirySweep(atOnce{e}, 10, false)(context.Background(), time.Now())
	require.ErrorContains(t, err, "not after")
	require.Equal(t, 1, e.calls, "refused at the first batch that did not move")
	require.True(t, walksOn(sqlite.LotKey{UserID: "a", LotID: "z"}, sqlite.LotKey{UserID: "b", LotID: "a"}))
	require.True(t, walksOn(sqlite.LotKey{UserID: "a", LotID: "1"}, sqlite.LotKey{UserID: "a", LotID: "2"}))
	require.False(t, walksOn(sqlite.LotKey{UserID: "b"}, sqlite.LotKey{UserID: "a", LotID: "z"}))
}

// orderExpirer has n batches to give before the one that walks to the end,
// each of one lot; it logs when each batch runs and when its commit is
// waited for, and fails the commits in fail.
type orderExpirer struct {
	n, runs  int
	fail     map[int]bool // commits that fail
	failRun  int          // the batch that fails to run (0: none)
	stuckRun int          // the batch that does not walk on (0: none)
	log      []string
}

func (o *orderExpirer) ExpireLotsAhead(_ context.Context, _ time.Time, _ sqlite.LotKey, _ int, _ string) (
	sqlite.Expired, func() error, error) {
	o.runs++
	i := o.runs
	o.log = append(o.log, fmt.Sprint("run ", i))
	if i == o.failRun {
		return sqlite.Expired{}, nil, fmt.Errorf("run %d failed", i)
	}
	next := sqlite.LotKey{LotID: fmt.Sprint(i)}
	if i == o.stuckRun {
		next = sqlite.LotKey{LotID: fmt.Sprint(i - 1)}
	}
	committed := func() error {
		o.log = append(o.log, fmt.Sprint("commit ", i))
		if o.fail[i] {
			return fmt.Errorf("commit %d failed", i)
		}
		return nil
	}
	return sqlite.Expired{Lots: 1, Credits: 10, Next: next, End: i > o.n}, committed, nil
}

// In the server the sweep queues each batch while the one before is
// still committing, so that no commit goes by without one; in its own
// process each batch commits before the next one runs. Either way it
// returns with no commit left unwaited for.
func TestExpirySweepQueuesTheNextBatchDuringTheCommit(t *testing.T) {
	for yield, want := range map[bool][]string{
		false: {"run 1", "run 2", "commit 1", "run 3", "commit 2", "run 4", "commit 3", "commit 4"},
		true:  {"run 1", "commit 1", "run 2", "commit 2", "run 3", "commit 3", "run 4", "commit 4"},
	} {
		o := &orderExpirer{n: 3}
		res, err := ExpirySweep(o, 10, yield)(context.Background(), time.Now())
		require.NoError(t, err)
		require.Equal(t, want, o.log, "yield %v", yield)
		require.Equal(t, Result{"lots": 4, "credits": 40, "batches": 4}, res)
	}
}

// A commit that fails ends the sweep with its error. The batch queued
// behind it is waited for too, and the Result counts only the batches
// whose commit held.
func TestExpirySweepCountsOnlyCommittedBatches(t *testing.T) {
	o := &orderExpirer{n: 5, fail: map[int]bool{2: true}}
	res, err := ExpirySweep(o, 10, false)(context.Background(), time.Now())
	require.ErrorContains(t, err, "commit 2 failed")
	require.Equal(t, []string{"run 1", "run 2", "commit 1", "run 3", "commit 2", "commit 3"}, o.log)
	require.Equal(t, Result{"lots": 2, "credits": 20, "batches": 2}, res, "batches 1 and 3")

	o = &orderExpirer{n: 5, fail: map[int]bool{6: true}}
	res, err = ExpirySweep(o, 10, false)(context.Background(), time.Now())
	require.ErrorContains(t, err, "commit 6 failed", "the last batch's commit too")
	require.Equal(t, Result{"lots": 5, "credits": 50, "batches": 5}, res)

	// A batch that fails to run, or does not walk on, ends the sweep once
	// the batch in flight has committed, and that batch counts.
	o = &orderExpirer{n: 5, failRun: 3}
	res, err = ExpirySweep(o, 10, false)(context.Background(), time.Now())
	require.ErrorContains(t, err, "run 3 failed")
	require.Equal(t, []string{"run 1", "run 2", "commit 1", "run 3", "commit 2"}, o.log)
	require.Equal(t, Result{"lots": 2, "credits": 20, "batches": 2}, res)

	o = &orderExpirer{n: 5, stuckRun: 3}
	res, err = ExpirySweep(o, 10, false)(context.Background(), time.Now())
	require.ErrorContains(t, err, "not after")
	require.Equal(t, []string{"run 1", "run 2", "commit 1", "run 3", "commit 2", "commit 3"}, o.log)
	require.Equal(t, Result{"lots": 3, "credits": 30, "batches": 3}, res)
}
